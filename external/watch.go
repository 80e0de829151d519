package external

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/internal/closeevent"
	"github.com/jobgate/jobgate/workflows"
)

// An external kind's workflow cannot start jobgate's webhook follower when
// it ends, as the Job workflow does: it is not jobgate's code. For a job
// with a callback the API starts, beside it, a JobExternalWatch workflow on
// jobgate's own task queue, which waits for the job's workflow to close and
// then starts the job's JobWebhook workflow, like any job's. It is durable:
// a restart of jobgate's workers resumes the wait.
const (
	// WatchWorkflowName is the workflow type of the watch.
	WatchWorkflowName = "JobExternalWatch"
	// WatchIDSuffix makes the watch's workflow ID from the job's.
	WatchIDSuffix = ":watch"
	// WaitActivity waits for the job's workflow to close.
	WaitActivity = "jobgate.external.wait"
)

// WatchInput is what a JobExternalWatch workflow is started with.
type WatchInput struct {
	JobID  string `json:"jobId"`
	Tenant string `json:"tenant"`
	URL    string `json:"url"`
	// Within bounds the wait: the job's start delay and timeout.
	Within time.Duration `json:"within"`
}

// notFoundType is the failure type of a wait for a job that does not
// exist (it was never started, or left Temporal's retention).
const notFoundType = "job-not-found"

// Watch is the JobExternalWatch workflow: it waits for the job's workflow
// to close (an activity long-polling its history), then starts the job's
// webhook delivery.
func Watch(ctx workflow.Context, in WatchInput) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The job's own timeout ends it; the hour is for Temporal's lag.
		StartToCloseTimeout: in.Within + time.Hour,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{notFoundType},
		},
		Summary: "wait for job " + in.JobID + " to end",
	})
	if err := workflow.ExecuteActivity(actx, WaitActivity, in.JobID).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("no webhook for an external job: its end was not seen", "job", in.JobID, "error", err)
		return err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            in.JobID + workflows.WebhookIDSuffix,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.TenantKey.ValueSet(in.Tenant)),
	})
	f := workflow.ExecuteChildWorkflow(cctx, workflows.WebhookWorkflowName,
		workflows.WebhookInput{JobID: in.JobID, Tenant: in.Tenant, URL: in.URL})
	return f.GetChildWorkflowExecution().Get(ctx, nil)
}

// Wait is the WaitActivity: it returns once the workflow with ID id has
// closed (following its runs when it continues as new), heartbeating
// while it waits.
func Wait(ctx context.Context, id string) error {
	c := activity.GetClient(ctx)
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			activity.RecordHeartbeat(hctx)
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	for {
		ev, err := closeevent.Wait(ctx, c.WorkflowService(), activity.GetInfo(ctx).WorkflowNamespace, id)
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return temporal.NewNonRetryableApplicationError("job "+id+" does not exist", notFoundType, err)
		}
		if err != nil {
			return err
		}
		if ev.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW {
			return nil
		}
	}
}

// Register registers the watch workflow and its activity on a worker of
// jobgate's own task queue.
func Register(w interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
	RegisterActivityWithOptions(any, activity.RegisterOptions)
}) {
	w.RegisterWorkflowWithOptions(Watch, workflow.RegisterOptions{Name: WatchWorkflowName})
	w.RegisterActivityWithOptions(Wait, activity.RegisterOptions{Name: WaitActivity})
}
