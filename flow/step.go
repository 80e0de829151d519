package flow

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// StepOptions are how a step's activity runs.
type StepOptions struct {
	// Timeout bounds one attempt (default one minute).
	Timeout time.Duration
	// Retry says how failed attempts are retried; zero fields take
	// job.RetryPolicy's defaults (one attempt: set MaximumAttempts to
	// retry).
	Retry job.RetryPolicy
	// HeartbeatTimeout, when set, is how long an attempt may go without a
	// heartbeat (activity.RecordHeartbeat) before it is retried on another
	// worker; heartbeats are also how cancellation reaches a long attempt.
	HeartbeatTimeout time.Duration
}

// Run runs activity (a function or method registered through
// Spec.Activities, or an activity's name) with args as the step called
// name (not empty, without '#': a repeated name's steps are numbered
// name#2, name#3…), and returns its future. The step shows in the job's status
// (steps: name, state, attempt, start and end) while it runs and after.
// Once it has succeeded it is never run again, whatever happens to the
// worker: a job resumed on another worker continues after it.
// A canceled job waits for the step's activity to stop before ctx's
// cancellation is seen by the code after Get.
func Run(ctx workflow.Context, name string, opts StepOptions, activity any, args ...any) workflow.Future {
	st := stateOf(ctx)
	if name == "" || strings.Contains(name, "#") {
		// "#n" numbers a name's repeats, so it cannot be part of one.
		f, settable := workflow.NewFuture(ctx)
		settable.SetError(temporal.NewNonRetryableApplicationError(fmt.Sprintf("flow: step name %q: use a non-empty name without '#'", name), "invalid-step", nil))
		return f
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if st.stepIDs == nil {
		st.stepIDs = map[string]int{}
	}
	// Activity IDs are the step names (status matches a pending activity's
	// attempt to its step by it), unique within the job.
	st.stepIDs[name]++
	id := name
	if n := st.stepIDs[name]; n > 1 {
		id += "#" + strconv.Itoa(n)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          id,
		StartToCloseTimeout: opts.Timeout,
		HeartbeatTimeout:    opts.HeartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy:         workflows.RetryPolicy(opts.Retry),
		Summary:             name,
	})
	idx := st.startStep(ctx, id, job.StateRunning, "")
	startedAt := st.steps[idx].StartedAt
	f := workflow.ExecuteActivity(actx, activity, args...)
	done, settable := workflow.NewFuture(ctx)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(gctx workflow.Context) {
		err := f.Get(gctx, nil)
		st.endStep(gctx, id, startedAt, err)
		settable.Chain(f)
	})
	return done
}
