// Package flow is how a job kind becomes a whole Temporal workflow: several
// steps with their own retries, timers, child jobs, waits for input and
// compensation. A workflow kind is ordinary Temporal workflow code, written
// with go.temporal.io/sdk/workflow, plus a few helpers from this package:
//
//   - Run runs an activity as a named step (its retries, its timeout);
//   - Progress reports the job's progress;
//   - WaitFor waits for a named input that a client delivers with
//     POST /v1/jobs/{id}/inputs/{name};
//   - StartJob starts a child job of any registered kind, a real job of the
//     same tenant, readable and cancelable through the API.
//
// The helpers publish the job's progress, steps and waits into its
// workflow's memo, throttled to about one write a second, so that status,
// long-polls, event streams and listings read them with no worker running.
// Everything here is deterministic; the usual rules of workflow code hold
// for the code around it (no I/O, no time.Now, no map-order dependence,
// workflow.GetVersion for changes that would alter a running job's
// history).
//
// Register a workflow kind like any other: app.Main(flow.Define(...)).
package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Spec describes a workflow kind; Define turns it into a job.Kind. In is
// the kind's input type, decoded strictly from JSON.
type Spec[In any] struct {
	// Name, Description, InputSchema, ExpectedDuration, Validate and Plan
	// are as for job.KindSpec. Plan's Timeout bounds the whole job (zero:
	// Expected plus an hour); its Retry is unused (each step has its own).
	Name             string
	Description      string
	InputSchema      string
	ExpectedDuration string
	Validate         func(in In) []job.FieldError
	Plan             func(in In) job.Plan
	// Inputs are the named inputs the workflow may wait for (WaitFor),
	// each with the JSON Schema its body is checked against before it
	// reaches the job.
	Inputs []job.Input
	// Workflow is the kind's workflow code. Its result must be
	// JSON-encodable and is the job's result; an error fails the job with
	// its message (a temporal.ApplicationError keeps its type). It must
	// return promptly once ctx is canceled, after undoing what it must
	// (compensation: use workflow.NewDisconnectedContext for the steps that
	// undo).
	Workflow func(ctx workflow.Context, in In) (any, error)
	// Activities are registered on every worker, for Run: functions, or
	// pointers to structs whose exported methods are activities (named
	// after the method). Their names must be unique across kinds.
	Activities []any
}

// Define returns the workflow kind spec describes.
func Define[In any](spec Spec[In]) job.Kind {
	k := job.Define(job.KindSpec[In]{
		Name:             spec.Name,
		Description:      spec.Description,
		InputSchema:      spec.InputSchema,
		ExpectedDuration: spec.ExpectedDuration,
		Validate:         spec.Validate,
		Plan:             spec.Plan,
		Inputs:           spec.Inputs,
	})
	k.Workflow = &definition{
		activities: spec.Activities,
		run: func(ctx workflow.Context, raw json.RawMessage) (any, error) {
			in, err := job.DecodeStrict[In](raw)
			if err != nil {
				return nil, temporal.NewNonRetryableApplicationError("decode the job's input: "+err.Error(), "invalid-input", nil)
			}
			return spec.Workflow(ctx, in)
		},
	}
	return k
}

// definition is a workflow kind's code: a workflows.FlowRunner.
type definition struct {
	run        func(ctx workflow.Context, input json.RawMessage) (any, error)
	activities []any
}

// MaxResultBytes bounds a workflow kind's JSON result, which Temporal keeps
// in the workflow's history. A larger result fails the job: have a step
// (an activity kind run as a child job) write it to blob storage instead.
const MaxResultBytes = 256 << 10

// Activities implements workflows.FlowRunner.
func (d *definition) Activities() []any { return d.activities }

// RunFlow implements workflows.FlowRunner: it runs the kind's code with
// the job's state in ctx, and publishes the state one last time when the
// code returns.
func (d *definition) RunFlow(ctx workflow.Context, in workflows.Input, kinds *job.Registry) (workflows.Output, error) {
	st := &state{in: in, kinds: kinds, id: workflow.GetInfo(ctx).WorkflowExecution.ID, startedAt: workflow.Now(ctx).UTC(), inputs: map[string]*inputSlot{}}
	st.dirty = true
	st.publish(ctx, true)
	ctx = workflow.WithValue(ctx, stateKey{}, st)
	kctx, timedOut, stopTimer := withJobTimeout(ctx, in.Timeout)
	result, err := d.run(kctx, in.Input)
	stopTimer()
	st.waiting = nil
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	st.dirty = true
	st.publish(dctx, true)
	switch {
	case err != nil && *timedOut && ctx.Err() == nil:
		return workflows.Output{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the job did not finish within its %s", in.Timeout), "timeout", nil)
	case err != nil:
		return workflows.Output{}, failure(err)
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return workflows.Output{}, temporal.NewNonRetryableApplicationError("the job's result is not JSON: "+err.Error(), "invalid-result", nil)
	}
	if len(raw) > MaxResultBytes {
		return workflows.Output{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the job's result is %d bytes, over the %d a workflow kind may return; write large results from a step to blob storage", len(raw), MaxResultBytes),
			"result-too-large", nil)
	}
	return workflows.Output{Result: raw, Progress: st.progress}, nil
}

// timeoutVersion marks the change that bounds a workflow kind's job by its
// plan's Timeout; jobs started before it run unbounded. It is the one
// compatibility path of the job workflows, kept because recorded histories
// need it: the approval-* and pipeline-* files of
// workflows/testdata/histories recorded before the change (no
// flow-job-timeout marker) replay through its DefaultVersion branch, the
// later ones through version 1. No release has produced such jobs: the
// branch goes (with GetVersion, and the histories without the marker) at
// the first release, whose upgrade notes (docs/upgrading.md) then say that
// development builds' running workflow-kind jobs do not carry over.
const timeoutVersion = "flow-job-timeout"

// withJobTimeout returns ctx canceled once timeout has passed (zero: never),
// whether that happened, and a function that stops the timer.
func withJobTimeout(ctx workflow.Context, timeout time.Duration) (workflow.Context, *bool, func()) {
	timedOut := new(bool)
	if timeout <= 0 || workflow.GetVersion(ctx, timeoutVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return ctx, timedOut, func() {}
	}
	kctx, cancel := workflow.WithCancel(ctx)
	tctx, stop := workflow.WithCancel(ctx)
	workflow.Go(tctx, func(gctx workflow.Context) {
		if workflow.Sleep(gctx, timeout) == nil {
			*timedOut = true
			cancel()
		}
	})
	return kctx, timedOut, stop
}

// failure is the job's failure for an error of the kind's code: canceled
// stays canceled, Temporal's own errors keep their type, and any other
// error fails the job with its own message.
func failure(err error) error {
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	if temporal.IsCanceledError(err) || errors.As(err, &appErr) || errors.As(err, &timeout) {
		return err
	}
	return temporal.NewNonRetryableApplicationError(Message(err), "failed", nil)
}

// PublishInterval is how often, at most, the job's progress and steps are
// written to its workflow's memo; what changes in between is written
// together at the end of the interval. Waits and the job's end are written
// at once.
const PublishInterval = time.Second

// maxSteps bounds the steps kept in the memo: the most recent ones.
const maxSteps = 100

type stateKey struct{}

// state is what a running workflow kind publishes, and what its helpers
// share.
type state struct {
	in        workflows.Input
	kinds     *job.Registry
	id        string
	startedAt time.Time

	progress *job.Progress
	steps    []workflows.StepMemo
	waiting  []workflows.WaitingMemo

	dirty        bool
	lastPublish  time.Time
	timerPending bool

	inputs   map[string]*inputSlot
	waits    int
	children int
	stepIDs  map[string]int
}

func stateOf(ctx workflow.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	if st == nil {
		panic("flow: this helper works only inside a workflow kind's code (built with flow.Define)")
	}
	return st
}

// publish writes the state to the memo: at once when now is set or the
// last write is PublishInterval old, else once that interval has passed.
func (st *state) publish(ctx workflow.Context, now bool) {
	if !st.dirty {
		return
	}
	t := workflow.Now(ctx)
	wait := PublishInterval - t.Sub(st.lastPublish)
	if !now && wait > 0 {
		if !st.timerPending {
			st.timerPending = true
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			workflow.Go(dctx, func(gctx workflow.Context) {
				_ = workflow.Sleep(gctx, wait)
				st.timerPending = false
				st.publish(gctx, true)
			})
		}
		return
	}
	st.dirty = false
	st.lastPublish = t
	memo := map[string]any{
		workflows.MemoStartedAt:  st.startedAt,
		workflows.MemoSteps:      st.steps,
		workflows.MemoWaitingFor: st.waiting,
	}
	if st.progress != nil {
		memo[workflows.MemoProgress] = st.progress
	}
	// Visibility only: a failure here must not fail the job.
	_ = workflow.UpsertMemo(ctx, memo)
}

func (st *state) changed(ctx workflow.Context) {
	st.dirty = true
	st.publish(ctx, false)
}

// Progress reports the job's progress: current units done of total (0
// when unknown), with a short message. Cheap to call often: it is written
// to the job's record at most about once a second.
func Progress(ctx workflow.Context, current, total int64, message string) {
	st := stateOf(ctx)
	st.progress = &job.Progress{Current: current, Total: total, Message: message}
	st.changed(ctx)
}

// startStep records the start of a step and returns its index in steps.
func (st *state) startStep(ctx workflow.Context, name string, s job.State, jobID string) int {
	st.steps = append(st.steps, workflows.StepMemo{Name: name, State: s, StartedAt: workflow.Now(ctx).UTC(), JobID: jobID})
	if len(st.steps) > maxSteps {
		st.steps = st.steps[len(st.steps)-maxSteps:]
	}
	st.changed(ctx)
	return len(st.steps) - 1
}

// endStep records how the step called name that started at startedAt
// ended, if it is still kept (steps keeps the last maxSteps).
func (st *state) endStep(ctx workflow.Context, name string, startedAt time.Time, err error) {
	for i := len(st.steps) - 1; i >= 0; i-- {
		s := &st.steps[i]
		if s.Name != name || !s.StartedAt.Equal(startedAt) {
			continue
		}
		s.CompletedAt = workflow.Now(ctx).UTC()
		switch {
		case err == nil:
			s.State = job.StateSucceeded
		case temporal.IsCanceledError(err):
			s.State = job.StateCanceled
		default:
			s.State = job.StateFailed
			s.Error = Message(err)
		}
		break
	}
	st.changed(ctx)
}

// Message is err's own message, without Temporal's wrapping ("activity
// error (type: …)"), for step errors and job failures a client reads.
func Message(err error) string {
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &appErr):
		return appErr.Message()
	case errors.As(err, &timeout):
		return "timed out (" + timeout.TimeoutType().String() + ")"
	case errors.As(err, &canceled):
		return "canceled"
	}
	return err.Error()
}

// Builtin returns jobgate's built-in workflow kinds: approval and
// pipeline.
func Builtin() []job.Kind {
	return []job.Kind{Approval(), Pipeline()}
}
