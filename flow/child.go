package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// MaxDepth bounds how deeply jobs start child jobs (a pipeline of
// pipelines…): a job at this depth cannot start another.
const MaxDepth = 5

// ChildOptions are how StartJob starts a child job.
type ChildOptions struct {
	// Step names the step in the parent's status (default: the kind).
	Step string
}

// Job is a child job started by StartJob.
type Job struct {
	// ID is the child job's id: GET /v1/jobs/{id} reads it, DELETE cancels
	// it (which fails its Get here with a canceled error).
	ID string
	// Kind is the child's kind.
	Kind string

	err    error
	future workflow.ChildWorkflowFuture
	done   workflow.Future
}

// Get waits for the child job to end and decodes its JSON result into out
// (nil ignores it). A failed child returns an error with its message, a
// canceled one a temporal.CanceledError. A result the child keeps in blob
// storage (a file, a large result) cannot be decoded here: read it
// through the API by the child's ID.
func (j *Job) Get(ctx workflow.Context, out any) error {
	if j.err != nil {
		return j.err
	}
	var o workflows.Output
	if err := j.done.Get(ctx, &o); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if o.Blob != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("child job %s keeps its result in blob storage; read it through the API", j.ID), "result-in-blob", nil)
	}
	if err := json.Unmarshal(o.Result, out); err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("decode the result of child job %s: %v", j.ID, err), "invalid-result", nil)
	}
	return nil
}

// Result waits for the child job to end and returns its raw JSON result.
func (j *Job) Result(ctx workflow.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	err := j.Get(ctx, &raw)
	return raw, err
}

// Started is ready once the child's workflow has started (or failed to);
// its value is the error, if any.
func (j *Job) Started(ctx workflow.Context) error {
	if j.err != nil {
		return j.err
	}
	return j.future.GetChildWorkflowExecution().Get(ctx, nil)
}

// childStart is what StartJob decides about a child, recorded once in the
// history (a side effect), so that replay needs neither the registry's
// verdict nor a random id again.
type childStart struct {
	ID     string            `json:"id"`
	Input  workflows.Input   `json:"input"`
	Memo   workflows.JobMemo `json:"memo"`
	Reason string            `json:"reason,omitempty"`
}

// StartJob starts a child job of kind with input (JSON-encodable),
// validated against the kind like a submission, as a job of the parent's
// tenant with the parent's id as parentId. A canceled parent cancels its
// children and waits for them to end. The child shows as a step of the
// parent (its id in the step's jobId). A child that cannot start (an
// unknown kind, an invalid input, too deep) returns a Job whose Get fails.
func StartJob(ctx workflow.Context, kind string, input any, opts ChildOptions) *Job {
	st := stateOf(ctx)
	name := opts.Step
	if name == "" {
		name = kind
	}
	j := &Job{Kind: kind}
	raw, err := json.Marshal(input)
	if err != nil {
		j.err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("child job of kind %q: its input is not JSON: %v", kind, err), "invalid-input", nil)
		return j
	}
	st.children++
	var cs childStart
	enc := workflow.SideEffect(ctx, func(workflow.Context) any {
		return planChild(st, kind, raw, workflow.Now(ctx).UTC())
	})
	if err := enc.Get(&cs); err != nil {
		j.err = err
		return j
	}
	if cs.Reason != "" {
		idx := st.startStep(ctx, name, job.StateFailed, "")
		j.err = temporal.NewNonRetryableApplicationError(cs.Reason, "invalid-step", nil)
		st.endStep(ctx, name, st.steps[idx].StartedAt, j.err)
		return j
	}
	j.ID = cs.ID
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            cs.ID,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation:   true,
		Memo:                  map[string]any{workflows.MemoJob: cs.Memo},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.TenantKey.ValueSet(st.in.Tenant),
			workflows.KindKey.ValueSet(kind),
			workflows.StateKey.ValueSet(string(job.StateQueued)),
		),
		StaticSummary: fmt.Sprintf("%s job of tenant %s (child of %s)", kind, st.in.Tenant, st.id),
	})
	j.future = workflow.ExecuteChildWorkflow(cctx, workflows.JobWorkflowName, cs.Input)
	idx := st.startStep(ctx, name, job.StateRunning, cs.ID)
	startedAt := st.steps[idx].StartedAt
	done, settable := workflow.NewFuture(ctx)
	j.done = done
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(gctx workflow.Context) {
		err := j.future.Get(gctx, nil)
		st.endStep(gctx, name, startedAt, err)
		settable.Chain(j.future)
	})
	return j
}

// planChild checks a child's kind and input and plans it, as the API does
// for a submission.
func planChild(st *state, kind string, input json.RawMessage, now time.Time) childStart {
	if st.in.Depth+1 > MaxDepth {
		return childStart{Reason: fmt.Sprintf("child job of kind %q: jobs may start jobs only %d deep", kind, MaxDepth)}
	}
	if st.kinds == nil {
		return childStart{Reason: "this worker has no kinds to start child jobs of"}
	}
	k, err := st.kinds.Check(kind, input)
	if err != nil {
		var verr *job.ValidationError
		if errors.As(err, &verr) {
			return childStart{Reason: fmt.Sprintf("child job of kind %q: %s", kind, verr.Error())}
		}
		return childStart{Reason: "child job: " + err.Error()}
	}
	if _, ext := external.Of(k); ext {
		return childStart{Reason: fmt.Sprintf("child job of kind %q: an external kind cannot be a child job yet", kind)}
	}
	plan := k.Plan(input)
	return childStart{
		ID: uuid.NewString(),
		Input: workflows.Input{
			Tenant:    st.in.Tenant,
			Kind:      kind,
			Input:     input,
			Timeout:   TimeoutOf(k, plan),
			Retry:     plan.Retry,
			ResultTTL: st.in.ResultTTL,
			Scratch:   k.KeepsScratch,
			Flow:      k.IsWorkflow(),
			Depth:     st.in.Depth + 1,
		},
		Memo: workflows.JobMemo{Tenant: st.in.Tenant, CreatedAt: now, ExpectedMillis: plan.Expected.Milliseconds(), ParentID: st.id, Workflow: k.IsWorkflow()},
	}
}

// TimeoutOf is the time one attempt of a job of kind k with plan may take:
// the plan's Timeout, or else its expected duration plus a minute (an
// hour for a workflow kind, which may wait for people).
func TimeoutOf(k job.Kind, plan job.Plan) time.Duration {
	if plan.Timeout > 0 {
		return plan.Timeout
	}
	if k.IsWorkflow() {
		return plan.Expected + time.Hour
	}
	return plan.Expected + time.Minute
}
