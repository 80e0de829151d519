// Package activities runs the real work of each job kind as Temporal
// activities: it hands a kind's Run function a context that is canceled when
// the job is, and turns the progress the work reports into heartbeats, which
// is also how cancellation reaches the work. Results over a size threshold
// and files go to blob storage; the workflow's history carries a pointer.
// It also delivers jobs' webhooks and deletes expired results.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// HeartbeatInterval is how often a running activity heartbeats, whether or
// not its work reports progress. The worker sends heartbeats to Temporal at
// most this often, so it bounds both how stale progress can be and how long
// a cancellation takes to reach the work.
const HeartbeatInterval = time.Second

// DefaultResultBlobThreshold is the size in bytes over which a JSON result
// goes to blob storage when Worker.ResultBlobThreshold is zero.
const DefaultResultBlobThreshold = 256 << 10

// Deps is what the built-in kinds need from the deployment.
type Deps struct {
	// Outbound checks and limits the requests of http.request and
	// batch.http.
	Outbound Outbound
	// Blobs keeps batch.http's per-item checkpoints, so that a retried
	// batch resumes without redoing finished items; nil keeps them in
	// memory only (a retried batch starts over).
	Blobs *blob.Store
	// Jobs lists the jobs an export writes; nil makes export jobs fail.
	Jobs job.Lister
}

// Builtin returns jobgate's built-in kinds: sleep, http.request,
// batch.http and export.
func Builtin(d Deps) []job.Kind {
	return []job.Kind{Sleep(), HTTPRequest(d.Outbound), BatchHTTP(d.Outbound, d.Blobs), Export(d.Jobs)}
}

// Worker holds what a worker's activities need: the kinds, and what
// results, webhooks and cleanup need. Its methods are the activities.
type Worker struct {
	// Kinds are the job kinds, each registered as an activity of its name.
	Kinds *job.Registry
	// Blobs stores results over ResultBlobThreshold and file results. Nil
	// keeps every JSON result inline (one over Temporal's payload limit
	// then fails the job) and fails file results.
	Blobs *blob.Store
	// ResultBlobThreshold is the JSON result size in bytes over which the
	// result goes to Blobs (0: DefaultResultBlobThreshold; negative: every
	// result goes there).
	ResultBlobThreshold int64
	// Webhooks delivers jobs' callbacks; nil fails every delivery.
	Webhooks *Webhooks
}

// Register registers every kind as an activity named after it, and
// jobgate's own activities (webhooks, result cleanup).
func (w *Worker) Register(r worker.ActivityRegistry) {
	for _, k := range w.Kinds.Kinds() {
		r.RegisterActivityWithOptions(w.runner(k), activity.RegisterOptions{Name: k.Name})
	}
	r.RegisterActivityWithOptions(w.RenderWebhook, activity.RegisterOptions{Name: workflows.RenderWebhookActivity})
	r.RegisterActivityWithOptions(w.DeliverWebhook, activity.RegisterOptions{Name: workflows.DeliverWebhookActivity})
	r.RegisterActivityWithOptions(w.DeleteResult, activity.RegisterOptions{Name: workflows.DeleteResultActivity})
	r.RegisterActivityWithOptions(w.DeleteScratch, activity.RegisterOptions{Name: workflows.DeleteScratchActivity})
}

// runner adapts a kind's Run function to an activity. work is nil for jobs
// started before activities were told their job.
func (w *Worker) runner(k job.Kind) func(ctx context.Context, input json.RawMessage, work *workflows.Work) (workflows.Output, error) {
	return func(ctx context.Context, input json.RawMessage, work *workflows.Work) (workflows.Output, error) {
		ai := activity.GetInfo(ctx)
		info := job.Info{ID: ai.WorkflowExecution.ID, Kind: k.Name, Attempt: int(ai.Attempt)}
		if work != nil {
			info.Tenant = work.Tenant
		}
		stopping := activity.GetWorkerStopChannel(ctx)
		ctx = job.WithStopping(job.WithInfo(ctx, info), stopping)

		hb := &heartbeater{}
		// Resume from the last progress a previous attempt reported.
		if activity.HasHeartbeatDetails(ctx) {
			var p job.Progress
			if activity.GetHeartbeatDetails(ctx, &p) == nil {
				hb.last = &p
			}
		}
		stop := hb.run(ctx)
		result, err := k.Run(ctx, input, hb.report)
		var out workflows.Output
		if err == nil {
			out, err = w.store(ctx, info, result)
		}
		stop()
		if err != nil {
			return workflows.Output{}, activityError(ctx, stopping, err)
		}
		out.Progress = hb.progress()
		return out, nil
	}
}

// ScratchPrefix is where a job's work keeps data between attempts
// (batch.http's checkpoints); the job's workflow deletes it once the job
// has ended for good.
func ScratchPrefix(jobID string) string { return workflows.ScratchPrefix(jobID) }

// DeleteScratch is the activity that deletes a finished job's scratch data.
func (w *Worker) DeleteScratch(ctx context.Context, prefix string) error {
	if w.Blobs == nil {
		return nil // scratch data was kept in memory only
	}
	return w.Blobs.DeletePrefix(ctx, prefix)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// activityError classifies the work's error: cancellation stays
// cancellation, work interrupted by its worker's shutdown is retried,
// permanent errors are not retried, others are.
func activityError(ctx context.Context, stopping <-chan struct{}, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // the kind chose its own retry behaviour
	}
	var perm *job.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(perm.Error(), perm.Type, nil)
	}
	if isClosed(stopping) {
		return temporal.NewApplicationError("the worker shut down: "+err.Error()+"; another attempt resumes the work", "worker-stopped")
	}
	return temporal.NewApplicationError(err.Error(), "work-failed")
}

// heartbeater keeps the last reported progress and heartbeats it every
// HeartbeatInterval until stopped.
type heartbeater struct {
	mu   sync.Mutex
	last *job.Progress
}

func (h *heartbeater) report(p job.Progress) {
	h.mu.Lock()
	h.last = &p
	h.mu.Unlock()
}

func (h *heartbeater) progress() *job.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *heartbeater) beat(ctx context.Context) {
	if p := h.progress(); p != nil {
		activity.RecordHeartbeat(ctx, *p)
	} else {
		activity.RecordHeartbeat(ctx)
	}
}

func (h *heartbeater) run(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	h.beat(ctx)
	go func() {
		defer close(finished)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				h.beat(ctx)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// DeleteResult is the activity that deletes an expired result from blob
// storage, with anything else kept under the job's result prefix.
func (w *Worker) DeleteResult(ctx context.Context, key string) error {
	if w.Blobs == nil {
		return temporal.NewNonRetryableApplicationError("this worker has no blob storage (JOBGATE_BLOB_URL)", "no-blob-storage", nil)
	}
	if err := w.Blobs.Delete(ctx, key); err != nil {
		return err
	}
	if dir := resultDir(key); dir != "" {
		return w.Blobs.DeletePrefix(ctx, dir)
	}
	return nil
}

func errorf(typ, format string, args ...any) error {
	return job.Permanent(typ, fmt.Errorf(format, args...))
}
