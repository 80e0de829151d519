package workflows

import (
	"encoding/json"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
)

// Workflow types of the work that follows a job.
const (
	WebhookWorkflowName = "JobWebhook"
	CleanupWorkflowName = "JobCleanup"
)

// Workflow IDs of a job's followers are the job's ID and a suffix, so they
// are found without a search and never taken for a job.
const (
	WebhookIDSuffix = ":webhook"
	CleanupIDSuffix = ":cleanup"
	// ScratchIDSuffix names the workflow deleting a job's scratch data.
	ScratchIDSuffix = ":scratch"
)

// Activities the followers run. The names are jobgate's own: job kinds
// cannot take them (job.NewRegistry refuses the "jobgate." prefix).
const (
	RenderWebhookActivity  = "jobgate.webhook.render"
	DeliverWebhookActivity = "jobgate.webhook.deliver"
	DeleteResultActivity   = "jobgate.result.delete"
	DeleteScratchActivity  = "jobgate.scratch.delete"
)

// CallbackMemo is the memo key under which a finished JobWebhook workflow
// keeps its WebhookOutcome, so a job's status reads it without its history.
const CallbackMemo = "callback"

// cleanupGrace is how long after the result's expiry its blob is deleted,
// so that no reader that still sees the job unexpired finds it missing.
const cleanupGrace = 5 * time.Second

// Webhook delivery retries: 5 s doubling to an hour between attempts, for
// a day; then delivery gives up.
const (
	WebhookFirstRetry = 5 * time.Second
	WebhookMaxRetry   = time.Hour
	WebhookRetryFor   = 24 * time.Hour
)

// Error types of a delivery attempt that end delivery at once.
const (
	WebhookGone    = "gone"
	WebhookRefused = "destination-refused"
	WebhookNoKey   = "no-signing-secret"
)

// EventWaiting is the WebhookInput.Event of a job.waiting webhook.
const EventWaiting = "waiting"

// WebhookInput is what a JobWebhook workflow is started with.
type WebhookInput struct {
	JobID  string `json:"jobId"`
	Tenant string `json:"tenant"`
	URL    string `json:"url"`
	// Event is empty for the webhook of the job's end, EventWaiting for a
	// job that started waiting for Input (its Seq-th wait).
	Event string `json:"event,omitempty"`
	Input string `json:"input,omitempty"`
	Seq   int    `json:"seq,omitempty"`
}

// WebhookMessage is one webhook, rendered once so that every retry sends
// the same body under the same webhook-id.
type WebhookMessage struct {
	ID   string          `json:"id"`
	Body json.RawMessage `json:"body"`
}

// WebhookAttempt is what one delivery attempt saw; a failed attempt's
// ApplicationError carries it as details.
type WebhookAttempt struct {
	Attempt int       `json:"attempt"`
	Status  int       `json:"status,omitempty"`
	At      time.Time `json:"at"`
}

// WebhookOutcome is how a delivery ended.
type WebhookOutcome struct {
	State         job.CallbackState `json:"state"`
	Attempts      int               `json:"attempts"`
	LastStatus    int               `json:"lastStatus,omitempty"`
	LastAttemptAt time.Time         `json:"lastAttemptAt,omitzero"`
	LastError     string            `json:"lastError,omitempty"`
}

// ScratchPrefix is where a job's work keeps data between attempts in blob
// storage (batch.http's checkpoints).
func ScratchPrefix(jobID string) string { return "work/" + jobID + "/" }

// CleanupInput is what a JobCleanup workflow is started with.
type CleanupInput struct {
	// Key is a result to delete (with its directory).
	Key string `json:"key,omitempty"`
	// Prefix, when set instead, is scratch data to delete.
	Prefix string        `json:"prefix,omitempty"`
	After  time.Duration `json:"after"`
}

// afterJob starts the workflows that outlive the job: the webhook, if the
// job has a callback, and the cleanup of a result in blob storage. They are
// abandoned, so the job closes at once, and started before it closes.
func afterJob(ctx workflow.Context, in Input, out Output, err error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	logger := workflow.GetLogger(ctx)
	var started []workflow.ChildWorkflowFuture
	if err == nil && out.Blob != nil {
		ttl := in.ResultTTL
		if ttl <= 0 {
			ttl = 24 * time.Hour
		}
		started = append(started, startFollower(dctx, in.Tenant, id+CleanupIDSuffix, CleanupWorkflowName,
			CleanupInput{Key: out.Blob.Key, After: ttl + cleanupGrace}))
	}
	if in.Scratch {
		// Deleted only now, after the job's last attempt: an attempt that
		// merely timed out must not delete what the next one resumes from.
		started = append(started, startFollower(dctx, in.Tenant, id+ScratchIDSuffix, CleanupWorkflowName,
			CleanupInput{Prefix: ScratchPrefix(id)}))
	}
	if in.CallbackURL != "" {
		started = append(started, startFollower(dctx, in.Tenant, id+WebhookIDSuffix, WebhookWorkflowName,
			WebhookInput{JobID: id, Tenant: in.Tenant, URL: in.CallbackURL}))
	}
	for _, f := range started {
		if err := f.GetChildWorkflowExecution().Get(dctx, nil); err != nil {
			// The job's outcome stands; operators see this in the logs.
			logger.Error("could not start a follower workflow", "error", err)
		}
	}
}

func startFollower(ctx workflow.Context, tenant, id, name string, arg any) workflow.ChildWorkflowFuture {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(TenantKey.ValueSet(tenant)),
	})
	return workflow.ExecuteChildWorkflow(ctx, name, arg)
}

// JobWebhook delivers a finished job's webhook: it renders the message
// once, then posts it, retried with backoff for a day; 2xx ends it
// delivered, 410 gone, a refused destination or a missing signing secret
// failed. The outcome is the workflow's result and its memo.
func JobWebhook(ctx workflow.Context, in WebhookInput) (WebhookOutcome, error) {
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
		Summary: "render the webhook of job " + in.JobID,
	})
	var msg WebhookMessage
	var outcome WebhookOutcome
	if err := workflow.ExecuteActivity(rctx, RenderWebhookActivity, in).Get(ctx, &msg); err != nil {
		outcome = WebhookOutcome{State: job.CallbackFailed, LastError: "the webhook could not be prepared: " + failureMessage(err)}
	} else {
		outcome = deliver(ctx, in, msg)
	}
	// Visibility only: the result holds the outcome too.
	_ = workflow.UpsertMemo(ctx, map[string]any{CallbackMemo: outcome})
	return outcome, nil
}

func deliver(ctx workflow.Context, in WebhookInput, msg WebhookMessage) WebhookOutcome {
	dctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: WebhookRetryFor,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        WebhookFirstRetry,
			BackoffCoefficient:     2,
			MaximumInterval:        WebhookMaxRetry,
			NonRetryableErrorTypes: []string{WebhookGone, WebhookRefused, WebhookNoKey},
		},
		Summary: "POST the webhook of job " + in.JobID,
	})
	var done WebhookAttempt
	err := workflow.ExecuteActivity(dctx, DeliverWebhookActivity, in, msg).Get(ctx, &done)
	if err == nil {
		return WebhookOutcome{State: job.CallbackDelivered, Attempts: done.Attempt, LastStatus: done.Status, LastAttemptAt: done.At}
	}
	out := WebhookOutcome{State: job.CallbackFailed, LastError: failureMessage(err)}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		var last WebhookAttempt
		if appErr.HasDetails() && appErr.Details(&last) == nil {
			out.Attempts, out.LastStatus, out.LastAttemptAt = last.Attempt, last.Status, last.At
		}
		if appErr.Type() == WebhookGone {
			out.State = job.CallbackGone
		}
	}
	return out
}

// failureMessage is an activity's failure in the attempt's own words
// rather than the engine's wrapping.
func failureMessage(err error) string {
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &timeout):
		msg := "gave up after retrying (" + timeout.TimeoutType().String() + ")"
		if errors.As(err, &appErr) {
			msg += "; last attempt: " + appErr.Message()
		}
		return msg
	case errors.As(err, &appErr):
		return appErr.Message()
	}
	return err.Error()
}

// JobCleanup deletes a job's result from blob storage once it expired.
func JobCleanup(ctx workflow.Context, in CleanupInput) error {
	if err := workflow.Sleep(ctx, in.After); err != nil {
		return err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 7 * 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    10 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Minute,
		},
		Summary: "delete expired result " + in.Key + in.Prefix,
	})
	if in.Prefix != "" {
		return workflow.ExecuteActivity(actx, DeleteScratchActivity, in.Prefix).Get(ctx, nil)
	}
	return workflow.ExecuteActivity(actx, DeleteResultActivity, in.Key).Get(ctx, nil)
}

// Register registers jobgate's workflows on w; kinds are the worker's
// kinds, where the Job workflow finds workflow kinds' code (nil: none).
func Register(w interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}, kinds *job.Registry) {
	w.RegisterWorkflowWithOptions(jobWorkflow(kinds), workflow.RegisterOptions{Name: JobWorkflowName})
	w.RegisterWorkflowWithOptions(JobWebhook, workflow.RegisterOptions{Name: WebhookWorkflowName})
	w.RegisterWorkflowWithOptions(JobCleanup, workflow.RegisterOptions{Name: CleanupWorkflowName})
}
