package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Error types of an input's refusal, as the Update's rejection carries
// them: the API answers 409 for NotWaitingType and 422 for RejectedType.
const (
	NotWaitingType = "not-waiting"
	RejectedType   = "input-rejected"
)

// ErrNoInput is returned by WaitFor when the wait timed out.
var ErrNoInput = errors.New("no input in time")

// WaitOptions are how WaitFor waits.
type WaitOptions struct {
	// Timeout bounds the wait; zero waits as long as the job may run.
	Timeout time.Duration
	// Validate, when set, checks a delivered body (which already satisfied
	// the input's schema) before the job takes it; its error refuses the
	// delivery (422, with the error's text) and the job keeps waiting. It
	// must not change the workflow's state.
	Validate func(body json.RawMessage) error
}

// inputSlot is one named input of the running job.
type inputSlot struct {
	waiting  bool
	validate func(json.RawMessage) error
	body     json.RawMessage
	received bool
}

// WaitFor waits until a client delivers the input called name (declared in
// the kind's Spec.Inputs), decodes its JSON body into out, and returns nil.
// While it waits, the job's status lists the input in waitingFor (and a
// step of the same name shows it), and a job with a callbackUrl gets a
// job.waiting webhook. Deliveries while the job is not waiting for name
// are refused (409). It returns ErrNoInput after opts.Timeout, and ctx's
// error when the job is canceled.
func WaitFor(ctx workflow.Context, name string, out any, opts WaitOptions) error {
	st := stateOf(ctx)
	slot, err := st.inputSlot(ctx, name)
	if err != nil {
		return err
	}
	if slot.waiting {
		return fmt.Errorf("flow: already waiting for input %q", name)
	}
	slot.waiting, slot.validate, slot.received, slot.body = true, opts.Validate, false, nil
	since := workflow.Now(ctx).UTC()
	st.waiting = append(st.waiting, workflows.WaitingMemo{Name: name, Since: since})
	idx := st.startStep(ctx, name, job.StateRunning, "")
	startedAt := st.steps[idx].StartedAt
	st.publish(ctx, true)
	st.waits++
	if st.in.CallbackURL != "" {
		st.notifyWaiting(ctx, name)
	}

	var waitErr error
	if opts.Timeout > 0 {
		ok, err := workflow.AwaitWithTimeout(ctx, opts.Timeout, func() bool { return slot.received })
		switch {
		case err != nil:
			waitErr = err
		case !ok:
			waitErr = ErrNoInput
		}
	} else {
		waitErr = workflow.Await(ctx, func() bool { return slot.received })
	}
	slot.waiting = false
	for i, w := range st.waiting {
		if w.Name == name {
			st.waiting = append(st.waiting[:i], st.waiting[i+1:]...)
			break
		}
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	st.endStep(dctx, name, startedAt, waitErr)
	st.publish(dctx, true)
	if waitErr != nil {
		return waitErr
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(slot.body, out); err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("decode input %q: %v", name, err), "invalid-input", nil)
	}
	return nil
}

// inputSlot returns the slot of input name, registering its Update
// handler the first time.
func (st *state) inputSlot(ctx workflow.Context, name string) (*inputSlot, error) {
	if slot, ok := st.inputs[name]; ok {
		return slot, nil
	}
	slot := &inputSlot{}
	validator := func(ctx workflow.Context, body json.RawMessage) error {
		if !slot.waiting || slot.received {
			return temporal.NewApplicationError("the job is not waiting for input "+strconv.Quote(name)+" now", NotWaitingType)
		}
		if slot.validate != nil {
			if err := slot.validate(body); err != nil {
				return temporal.NewApplicationError(err.Error(), RejectedType)
			}
		}
		return nil
	}
	handler := func(ctx workflow.Context, body json.RawMessage) error {
		// Only the state check: the validator (with the kind's own
		// Validate) does not run on replay, and must not through here.
		if !slot.waiting || slot.received {
			return temporal.NewApplicationError("the job is not waiting for input "+strconv.Quote(name)+" now", NotWaitingType)
		}
		slot.body, slot.received = body, true
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, name, handler, workflow.UpdateHandlerOptions{Validator: validator}); err != nil {
		return nil, fmt.Errorf("flow: input %q: %w", name, err)
	}
	st.inputs[name] = slot
	return slot, nil
}

// notifyWaiting starts the job.waiting webhook of the job's current wait.
func (st *state) notifyWaiting(ctx workflow.Context, name string) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	cctx := workflow.WithChildOptions(dctx, workflow.ChildWorkflowOptions{
		WorkflowID:            st.id + workflows.WebhookIDSuffix + ":waiting:" + strconv.Itoa(st.waits),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.TenantKey.ValueSet(st.in.Tenant)),
	})
	f := workflow.ExecuteChildWorkflow(cctx, workflows.WebhookWorkflowName, workflows.WebhookInput{
		JobID: st.id, Tenant: st.in.Tenant, URL: st.in.CallbackURL, Event: workflows.EventWaiting, Input: name, Seq: st.waits,
	})
	if err := f.GetChildWorkflowExecution().Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("could not start the job.waiting webhook", "error", err)
	}
}
