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

	"go.temporal.io/api/serviceerror"
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

// DefaultResultBlobThreshold is the default of JOBGATE_RESULT_BLOB_THRESHOLD
// (Worker.ResultBlobThreshold): JSON results up to 256 KiB stay in the
// workflow's history. It is the one place that default is written.
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
	// result goes to Blobs; 0 sends every result there. Deployments use
	// DefaultResultBlobThreshold unless configured otherwise.
	ResultBlobThreshold int64
	// Webhooks delivers jobs' callbacks; nil fails every delivery.
	Webhooks *Webhooks
}

// Register registers every kind as an activity named after it, and
// jobgate's own activities (webhooks, result cleanup).
func (w *Worker) Register(r worker.ActivityRegistry) {
	for _, k := range w.Kinds.Kinds() {
		if k.Run == nil {
			continue // a workflow kind: its workflow registers its activities
		}
		r.RegisterActivityWithOptions(w.runner(k), activity.RegisterOptions{Name: k.Name})
	}
	r.RegisterActivityWithOptions(w.RenderWebhook, activity.RegisterOptions{Name: workflows.RenderWebhookActivity})
	r.RegisterActivityWithOptions(w.DeliverWebhook, activity.RegisterOptions{Name: workflows.DeliverWebhookActivity})
	r.RegisterActivityWithOptions(w.DeleteResult, activity.RegisterOptions{Name: workflows.DeleteResultActivity})
	r.RegisterActivityWithOptions(w.DeleteScratch, activity.RegisterOptions{Name: workflows.DeleteScratchActivity})
}

// runner adapts a kind's Run function to an activity; the Job workflow
// passes the job's input and its Work.
func (w *Worker) runner(k job.Kind) func(ctx context.Context, input json.RawMessage, work workflows.Work) (workflows.Output, error) {
	return func(ctx context.Context, input json.RawMessage, work workflows.Work) (workflows.Output, error) {
		ai := activity.GetInfo(ctx)
		info := job.Info{ID: ai.WorkflowExecution.ID, Tenant: work.Tenant, Kind: k.Name, Attempt: int(ai.Attempt)}
		stopping := activity.GetWorkerStopChannel(ctx)
		ctx = job.WithStopping(job.WithInfo(ctx, info), stopping)

		ctx, lost := context.WithCancelCause(ctx)
		defer lost(nil)
		// The first attempt's start is Temporal's (as the job's status
		// shows it while that attempt runs); later attempts have it from
		// the previous one's heartbeats.
		hb := &heartbeater{lost: lost, started: ai.StartedTime.UTC()}
		// Resume from the last progress a previous attempt reported.
		if activity.HasHeartbeatDetails(ctx) {
			var p *job.Progress
			var report workflows.WorkReport
			// Heartbeats of workers before WorkReport have the progress only.
			if activity.GetHeartbeatDetails(ctx, &p, &report) == nil {
				hb.last = p
				if !report.FirstStartedAt.IsZero() {
					hb.started = report.FirstStartedAt
				}
			}
		}
		stop := func() {}
		if !ai.IsLocalActivity {
			// A local activity (job.Plan.Local) cannot heartbeat: the server
			// knows no such activity, and would end the attempt.
			stop = hb.run(ctx)
		}
		result, err := k.Run(ctx, input, hb.report)
		var out workflows.Output
		if err == nil {
			out, err = w.store(ctx, info, result)
		}
		stop()
		if err != nil {
			return workflows.Output{}, activityError(ctx, stopping, err, workflows.WorkReport{FirstStartedAt: hb.started, Progress: hb.progress()})
		}
		out.Progress = hb.progress()
		out.StartedAt, out.Attempt = ai.StartedTime.UTC(), int(ai.Attempt)
		out.FirstStartedAt = hb.started
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
// permanent errors are not retried, others are. The errors it makes carry
// report as their details, so the job's status keeps its first start and
// last progress once it failed.
func activityError(ctx context.Context, stopping <-chan struct{}, err error, report workflows.WorkReport) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		if temporal.IsCanceledError(context.Cause(ctx)) {
			// Canceled by Temporal (the job's cancellation): the report
			// rides along as the cancellation's details.
			return temporal.NewCanceledError(report)
		}
		return err
	}
	if appErr, ok := err.(*temporal.ApplicationError); ok && !appErr.HasDetails() {
		// The kind chose its own retry behaviour; the report rides along.
		return temporal.NewApplicationErrorWithOptions(appErr.Message(), appErr.Type(), temporal.ApplicationErrorOptions{
			NonRetryable: appErr.NonRetryable(), Cause: appErr.Unwrap(), Details: []any{report},
			NextRetryDelay: appErr.NextRetryDelay(), Category: appErr.Category()})
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // the kind chose its own retry behaviour, and details
	}
	var perm *job.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(perm.Error(), perm.Type, nil, report)
	}
	if isClosed(stopping) {
		return temporal.NewApplicationError("the worker shut down: "+err.Error()+"; another attempt resumes the work", "worker-stopped", report)
	}
	return temporal.NewApplicationError(err.Error(), "work-failed", report)
}

// heartbeater keeps the last reported progress and heartbeats it every
// HeartbeatInterval until stopped.
//
// It sends the heartbeats itself, through the worker's client, rather than
// through activity.RecordHeartbeat: the SDK gives a heartbeat call only the
// throttle interval (1 s) to get through and cancels the activity when it
// fails, so any Temporal or database interruption longer than a second
// restarted every running job. Here a heartbeat that fails for a transient
// reason (Temporal restarting, its database down) is simply tried again on
// the next tick, and the work goes on on the same attempt, for as long as
// the server would still accept the attempt (workflows.HeartbeatTimeout).
// An answer that ends the attempt (cancellation requested, the attempt or
// its workflow gone, the activity paused or reset) is handed to the SDK's
// own heartbeat, which asks the server once more and cancels the work with
// the cause the SDK needs to report it (canceled, not failed): cancellation
// reaches the work as fast as before, one round trip later.
type heartbeater struct {
	// started is when the work's first attempt started; every heartbeat
	// carries it (workflows.WorkReport) for the attempts that follow.
	started time.Time

	mu   sync.Mutex
	last *job.Progress
	// lost cancels the work when no heartbeat got through for longer than
	// workflows.HeartbeatTimeout: the server has timed the attempt out and
	// given the job to another one.
	lost context.CancelCauseFunc
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

// heartbeatCallTimeout bounds one heartbeat call, retries of transient
// errors included; a call cut short is tried again on the next tick.
const heartbeatCallTimeout = 5 * time.Second

// beat sends one heartbeat. It reports whether the server answered (with
// anything) and whether that answer ends the attempt.
func (h *heartbeater) beat(ctx context.Context) (answered, final bool) {
	// The progress first (null before any), as readers of heartbeats
	// before WorkReport expect.
	details := []any{h.progress(), workflows.WorkReport{FirstStartedAt: h.started}}
	c := activity.GetClient(ctx)
	if c == nil { // the SDK's test environment
		activity.RecordHeartbeat(ctx, details...)
		return true, false
	}
	cctx, cancel := context.WithTimeout(ctx, heartbeatCallTimeout)
	defer cancel()
	err := c.RecordActivityHeartbeat(cctx, activity.GetInfo(ctx).TaskToken, details...)
	if err == nil {
		return true, false
	}
	if ctx.Err() != nil {
		return false, false // the work ended meanwhile
	}
	if heartbeatEndsAttempt(err) {
		// The SDK's heartbeat gets the same answer and cancels the work
		// with the cause it reports; should it not, the work stops anyway.
		activity.RecordHeartbeat(ctx, details...)
		if ctx.Err() == nil && h.lost != nil {
			h.lost(fmt.Errorf("Temporal ended this attempt: %w", err))
		}
		return true, true
	}
	activity.GetLogger(ctx).Warn("Heartbeat did not get through; the work goes on and the next heartbeat tries again", "Error", err)
	return false, false
}

// heartbeatEndsAttempt reports whether a heartbeat's error is the server's
// answer that this attempt is over, as opposed to a failure to reach it.
func heartbeatEndsAttempt(err error) bool {
	var canceled *temporal.CanceledError
	var notFound *serviceerror.NotFound
	var nsNotFound *serviceerror.NamespaceNotFound
	var nsNotActive *serviceerror.NamespaceNotActive
	var invalid *serviceerror.InvalidArgument
	return errors.As(err, &canceled) || errors.As(err, &notFound) || errors.As(err, &nsNotFound) ||
		errors.As(err, &nsNotActive) || errors.As(err, &invalid) ||
		errors.Is(err, activity.ErrActivityPaused) || errors.Is(err, activity.ErrActivityReset)
}

func (h *heartbeater) run(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	h.beat(ctx)
	lastAnswer := time.Now()
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
				answered, final := h.beat(ctx)
				switch {
				case final:
					return
				case answered:
					lastAnswer = time.Now()
				case time.Since(lastAnswer) > workflows.HeartbeatTimeout && h.lost != nil:
					h.lost(fmt.Errorf("no heartbeat reached Temporal for %s: the attempt has timed out there and another one takes over the job",
						time.Since(lastAnswer).Round(time.Second)))
					return
				}
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
