package saga

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
)

// How the steps run: each attempt bounded, failures retried a few times
// (the activities are idempotent, so a retry never does a thing twice).
// Undoing is retried longer: an order must not stay half done.
var (
	stepOptions = flow.StepOptions{
		Timeout: 10 * time.Second,
		Retry:   job.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second},
	}
	shipOptions = flow.StepOptions{
		Timeout:          10 * time.Minute,
		HeartbeatTimeout: 10 * time.Second,
		Retry:            job.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second},
	}
	undoOptions = flow.StepOptions{
		Timeout: 10 * time.Second,
		Retry:   job.RetryPolicy{MaximumAttempts: 20, InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	}
)

// steps is how many steps progress counts: reserve, charge, approval,
// ship.
const steps = 4

// Workflow is the order saga. Each step registers its undo before it
// runs (a step that timed out may still have taken effect; every undo does
// nothing for what was never done); when the order is canceled or fails,
// the undos of the steps reached run in reverse order, on a disconnected
// context so that the cancellation does not stop them.
func Workflow(ctx workflow.Context, o Order) (res any, err error) {
	var a *Activities // method values name the activities; nil is enough
	d := Details{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Order: o}

	var undo compensations
	defer func() {
		if err == nil {
			return
		}
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if uerr := undo.run(dctx, d, flow.Message(err)); uerr != nil {
			workflow.GetLogger(ctx).Error("could not undo the order", "order", d.ID, "error", uerr)
			err = temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s; undoing it failed too: %s", flow.Message(err), uerr), "undo-failed", nil)
		}
	}()

	var r Result
	flow.Progress(ctx, 0, steps, "reserving the items")
	undo.add("release", a.Release)
	if err := flow.Run(ctx, "reserve", stepOptions, a.Reserve, d).Get(ctx, &r.Reservation); err != nil {
		return nil, err
	}

	flow.Progress(ctx, 1, steps, "charging the customer")
	undo.add("refund", a.Refund)
	if err := flow.Run(ctx, "charge", stepOptions, a.Charge, d).Get(ctx, &r.Payment); err != nil {
		return nil, err
	}

	flow.Progress(ctx, 2, steps, "waiting for the manager's approval")
	err = flow.WaitFor(ctx, ApprovalInput, &r.Approval, flow.WaitOptions{
		Timeout:  approvalTimeout(o),
		Validate: commentedRejection,
	})
	switch {
	case errors.Is(err, flow.ErrNoInput):
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("no approval within %s", approvalTimeout(o)), "approval-timeout", nil)
	case err != nil:
		return nil, err
	case !r.Approval.Approved:
		return nil, temporal.NewNonRetryableApplicationError("the manager rejected the order: "+r.Approval.Comment, "rejected", nil)
	}

	flow.Progress(ctx, 3, steps, "shipping")
	if err := flow.Run(ctx, "ship", shipOptions, a.Ship, d).Get(ctx, &r.Tracking); err != nil {
		return nil, err
	}
	flow.Progress(ctx, steps, steps, "shipped")
	return r, nil
}

// commentedRejection is the approval's validator: a rejection must say
// why. Its error refuses the delivery (422) and the order keeps waiting.
func commentedRejection(body json.RawMessage) error {
	var dec flow.Decision
	if err := json.Unmarshal(body, &dec); err != nil {
		return err
	}
	if !dec.Approved && dec.Comment == "" {
		return errors.New("a rejection needs a comment saying why")
	}
	return nil
}

// compensations are the undos of an order's steps, in the order the
// steps ran.
type compensations []compensation

type compensation struct {
	step     string
	activity any
}

func (c *compensations) add(step string, activity any) {
	*c = append(*c, compensation{step, activity})
}

// run runs the undos one after the other, the last step's first; one that
// fails (after its retries) does not stop the others. Progress counts the
// undos done, and says why the order is undone.
func (c compensations) run(ctx workflow.Context, d Details, why string) error {
	var errs []error
	for done := range len(c) {
		u := c[len(c)-1-done]
		flow.Progress(ctx, int64(done), int64(len(c)), fmt.Sprintf("undoing the order (%s): %s", why, u.step))
		if err := flow.Run(ctx, u.step, undoOptions, u.activity, d).Get(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", u.step, flow.Message(err)))
		}
	}
	flow.Progress(ctx, int64(len(c)), int64(len(c)), "undone: "+why)
	return errors.Join(errs...)
}
