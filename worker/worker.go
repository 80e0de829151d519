// Package worker builds jobgate's Temporal worker: the Job, JobWebhook and
// JobCleanup workflows, one activity per activity kind, the activities of
// workflow kinds, and jobgate's own activities (results, webhooks,
// cleanup). The job service over Temporal, which the API uses, is engine.
package worker

import (
	"context"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Options tunes a worker.
type Options struct {
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

// Jobs reads a job's status as the API answers it.
type Jobs interface {
	Get(ctx context.Context, tenant, id string) (*job.Job, error)
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
	// Jobs reads the statuses webhooks carry: the process's job service
	// (an *engine.Service). Nil reads them through a read-only
	// engine.Service of the worker's own, with ResultTTL.
	Jobs Jobs
	// ResultTTL is the API's result TTL when Jobs is nil (default 24h).
	ResultTTL time.Duration
}

// New returns a worker (not yet started) that runs the Job, JobWebhook and
// JobCleanup workflows and one activity per kind of kinds on taskQueue,
// with jobgate's own activities.
func New(c client.Client, taskQueue string, kinds *job.Registry, opts Options) sdkworker.Worker {
	if opts.MaxConcurrentJobs <= 0 {
		opts.MaxConcurrentJobs = 200
	}
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
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
		jobs := wo.Jobs
		if jobs == nil {
			jobs = engine.New(c, nil, engine.Config{TaskQueue: taskQueue, ResultTTL: wo.ResultTTL, FinishedCacheSize: -1})
		}
		acts.Webhooks = &activities.Webhooks{Secrets: wo.Secrets, Outbound: wo.Outbound, Load: jobs.Get, Render: wo.Render}
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
