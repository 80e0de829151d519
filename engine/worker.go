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
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// WorkerOptions tunes a worker.
type WorkerOptions struct {
	// MaxConcurrentJobs bounds the jobs' activities one worker runs at once
	// (default 200).
	MaxConcurrentJobs int
}

// NewWorker returns a worker (not yet started) that runs the Job workflow
// and one activity per kind of kinds on taskQueue.
func NewWorker(c client.Client, taskQueue string, kinds *job.Registry, opts WorkerOptions) worker.Worker {
	if opts.MaxConcurrentJobs <= 0 {
		opts.MaxConcurrentJobs = 200
	}
	w := worker.New(c, taskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: opts.MaxConcurrentJobs,
		// Heartbeats carry progress and bring cancellation back: send them
		// to Temporal about once a second, not 80% of the heartbeat timeout.
		MaxHeartbeatThrottleInterval:     activities.HeartbeatInterval,
		DefaultHeartbeatThrottleInterval: activities.HeartbeatInterval,
		WorkerStopTimeout:                10 * time.Second,
	})
	w.RegisterWorkflowWithOptions(workflows.Job, workflow.RegisterOptions{Name: workflows.JobWorkflowName})
	activities.Register(w, kinds)
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
	resp, err := s.c.DescribeTaskQueue(ctx, s.cfg.TaskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return translate("describe task queue", err)
	}
	cutoff := s.cfg.Now().Add(-pollerFreshness)
	polled := false
	for _, p := range resp.GetPollers() {
		polled = polled || p.GetLastAccessTime().AsTime().After(cutoff)
	}
	if !polled {
		return fmt.Errorf("%w: task queue %q", job.ErrNoWorker, s.cfg.TaskQueue)
	}
	return s.checkBacklog(ctx)
}

// pollerFreshness is how recently a worker must have polled to count as
// live: a long poll lasts up to a minute.
const pollerFreshness = 90 * time.Second
