package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// WorkerOptions tunes a worker.
type WorkerOptions struct {
	// MaxConcurrentJobs bounds the jobs' activities one worker runs at once
	// (default 200).
	MaxConcurrentJobs int
	// Blobs stores results over ResultBlobThreshold and file results (nil:
	// every result inline, file results fail).
	Blobs *blob.Store
	// ResultBlobThreshold is the JSON result size in bytes over which a
	// result goes to Blobs; 0 sends every result there (see
	// activities.DefaultResultBlobThreshold).
	ResultBlobThreshold int64
	// Webhooks configures webhook delivery; nil fails every delivery.
	Webhooks *WebhookOptions
}

// WebhookOptions configures how a worker delivers jobs' webhooks.
type WebhookOptions struct {
	// Secrets are the tenants' whsec_ signing secrets, by tenant.
	Secrets map[string]string
	// Outbound checks the receivers' addresses.
	Outbound activities.Outbound
	// Render renders a status as GET /v1/jobs/{id}?redirect=false answers
	// it: httpapi.NewStatus under the deployment's public URL.
	Render func(j *job.Job) any
	// ResultTTL is the API's result TTL (default 24h).
	ResultTTL time.Duration
}

// NewWorker returns a worker (not yet started) that runs the Job,
// JobWebhook and JobCleanup workflows and one activity per kind of kinds on
// taskQueue, with jobgate's own activities.
func NewWorker(c client.Client, taskQueue string, kinds *job.Registry, opts WorkerOptions) worker.Worker {
	if opts.MaxConcurrentJobs <= 0 {
		opts.MaxConcurrentJobs = 200
	}
	w := worker.New(c, taskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: opts.MaxConcurrentJobs,
		// The job activities send their heartbeats themselves, once a
		// second, and ride out a heartbeat that fails (activities'
		// heartbeater); the SDK's own heartbeat only delivers a
		// cancellation they were told of, and jobgate's short activities
		// (webhooks, cleanup) do not heartbeat. The throttle stays at the
		// heartbeat interval, as it was.
		MaxHeartbeatThrottleInterval:     activities.HeartbeatInterval,
		DefaultHeartbeatThrottleInterval: activities.HeartbeatInterval,
		WorkerStopTimeout:                10 * time.Second,
	})
	workflows.Register(w, kinds)
	acts := &activities.Worker{Kinds: kinds, Blobs: opts.Blobs, ResultBlobThreshold: opts.ResultBlobThreshold}
	if wo := opts.Webhooks; wo != nil {
		// Webhooks read the job's status as the API does.
		reader := New(c, nil, Config{TaskQueue: taskQueue, ResultTTL: wo.ResultTTL, FinishedCacheSize: -1})
		acts.Webhooks = &activities.Webhooks{Secrets: wo.Secrets, Outbound: wo.Outbound, Load: reader.Get, Render: wo.Render}
	}
	acts.Register(w)
	// Delivers the webhooks of external kinds' jobs.
	external.Register(w)
	for _, k := range kinds.Kinds() {
		if f, ok := k.Workflow.(workflows.FlowRunner); ok {
			for _, a := range f.Activities() {
				w.RegisterActivity(a)
			}
		}
	}
	return w
}

// EnsureSearchAttributes registers the search attributes jobs carry
// (JobTenant, JobKind, JobState) on namespace, adding those that are
// missing. It fails with instructions when the cluster does not let this
// client add them.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	op := c.OperatorService()
	list, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %q: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, name := range []string{workflows.TenantKey.GetName(), workflows.KindKey.GetName(), workflows.StateKey.GetName()} {
		if _, ok := list.GetCustomAttributes()[name]; !ok {
			missing[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes %v to namespace %q: %w; "+
			"an operator can add them with: temporal operator search-attribute create --namespace %s --name JobTenant --type Keyword "+
			"(and the same for JobKind and JobState)", keys(missing), namespace, err, namespace)
	}
	return nil
}

func keys(m map[string]enumspb.IndexedValueType) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Ready reports whether Temporal answers and a worker polls the job task
// queue. It returns job.ErrUnavailable (wrapped with the reason) if not.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	if _, err := s.c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("%w: Temporal health check: %v", job.ErrUnavailable, err)
	}
	if err := CheckStore(ctx, s.c); err != nil {
		return err
	}
	// Every task queue jobs start on: jobgate's own, and each external
	// kind's, whose workers are not jobgate's.
	var idle []string
	for _, queue := range s.jobQueues() {
		resp, err := s.c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			return translate("describe task queue", err)
		}
		cutoff := s.cfg.Now().Add(-pollerFreshness)
		polled := false
		for _, p := range resp.GetPollers() {
			polled = polled || p.GetLastAccessTime().AsTime().After(cutoff)
		}
		if !polled {
			idle = append(idle, queue)
		}
	}
	if len(idle) > 0 {
		return &job.NoWorkerError{TaskQueues: idle}
	}
	return s.checkBacklog(ctx, s.jobQueues()...)
}

// storeProbeID is a workflow ID no job has (job IDs are UUIDs and
// Idempotency-Keys are prefixed by their tenant).
const storeProbeID = "jobgate-store-probe"

// CheckStore reports whether Temporal can read its database, which its
// health check does not tell: the frontend answers SERVING, and task queue
// descriptions come from memory, while every start, signal and listing
// fails. It describes a workflow that does not exist, which the history
// service looks up in the database: NotFound is the database answering.
// It returns job.ErrUnavailable (wrapped with the reason) if not.
func CheckStore(ctx context.Context, c client.Client) error {
	_, err := c.DescribeWorkflowExecution(ctx, storeProbeID, "")
	var notFound *serviceerror.NotFound
	if err == nil || errors.As(err, &notFound) {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("Temporal's database check: %w", err)
	}
	return fmt.Errorf("%w: Temporal's database: %v", job.ErrUnavailable, err)
}

// pollerFreshness is how recently a worker must have polled to count as
// live: a long poll lasts up to a minute.
const pollerFreshness = 90 * time.Second
