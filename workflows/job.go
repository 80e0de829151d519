// Package workflows holds jobgate's deterministic workflow code: every job is
// one Job workflow that runs its kind's work as an activity, keeps the job's
// state in search attributes for operators, and returns the result. When the
// job ends it starts, abandoned to outlive it, a JobWebhook workflow that
// delivers the job's callback and, for a result kept in blob storage, a
// JobCleanup workflow that deletes it when the result expires.
package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
)

// JobWorkflowName is the workflow type of every job.
const JobWorkflowName = "Job"

// FinishedMetric counts jobs reaching a terminal state, tagged with kind
// and state (jobgate_jobs_finished in Prometheus, through the SDK).
const FinishedMetric = "jobgate_jobs_finished"

// HeartbeatTimeout is how long a running activity may go without a
// heartbeat before Temporal considers its worker dead and retries it
// elsewhere. Activities heartbeat about once a second.
const HeartbeatTimeout = 10 * time.Second

// Search attributes every job carries, so operators can find jobs in the
// Temporal Web UI (JobTenant = "acme") and listings can filter on them.
var (
	TenantKey = temporal.NewSearchAttributeKeyKeyword("JobTenant")
	KindKey   = temporal.NewSearchAttributeKeyKeyword("JobKind")
	StateKey  = temporal.NewSearchAttributeKeyKeyword("JobState")
)

// Input is what a Job workflow is started with. The API fills it from the
// kind's plan at submission, so a running job keeps the plan it was accepted
// with even if the kind's code changes later.
type Input struct {
	Tenant      string          `json:"tenant"`
	Kind        string          `json:"kind"`
	Input       json.RawMessage `json:"input"`
	CallbackURL string          `json:"callbackUrl,omitempty"`
	// Timeout bounds one attempt of the activity.
	Timeout time.Duration   `json:"timeout"`
	Retry   job.RetryPolicy `json:"retry"`
	// ResultTTL is how long the result stays readable after the job ends;
	// a result in blob storage is deleted then (default 24h).
	ResultTTL time.Duration `json:"resultTtl,omitempty"`
	// Scratch is true for kinds that keep data between attempts (see
	// job.Kind.KeepsScratch); it is deleted once the job has ended.
	Scratch bool `json:"scratch,omitempty"`
	// Flow is true for a workflow kind: the job runs the kind's workflow
	// code (job.Kind.Workflow, a FlowRunner) instead of one activity.
	Flow bool `json:"flow,omitempty"`
	// Depth counts the parents of a child job (0 for a job a client
	// submitted), so that jobs starting jobs stay bounded.
	Depth int `json:"depth,omitempty"`
	// Version is the Job workflow's version the job was submitted for
	// (InputVersion); 0 for jobs submitted before it and for child jobs.
	// Decided by the input, which the history keeps, a job's path costs
	// it no version marker and no TemporalChangeVersion search-attribute
	// upsert, as workflow.GetVersion would.
	Version int `json:"version,omitempty"`
	// Local runs the kind's work as a local activity (job.Plan.Local),
	// from Version 2.
	Local bool `json:"local,omitempty"`
}

// InputVersion is the Version the API puts in a new job's Input. At 2 the
// workflow upserts no terminal JobState, since the closed workflow's
// status says succeeded, failed or canceled, and runs Local work as a
// local activity without upserting running.
const InputVersion = 2

// FlowRunner runs a workflow kind's code inside the Job workflow; it is
// what flow.Define puts in job.Kind.Workflow. RunFlow must be
// deterministic. Activities are registered on every worker.
type FlowRunner interface {
	RunFlow(ctx workflow.Context, in Input, kinds *job.Registry) (Output, error)
	Activities() []any
}

// Work is the second argument of a kind's activity: which job it runs.
type Work struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Kind   string `json:"kind"`
}

// Output is what a succeeded job returns: the kind's result, inline or as
// a pointer to blob storage, and the last progress its work reported.
type Output struct {
	// Result is the kind's JSON result; empty when Blob holds it.
	Result json.RawMessage `json:"result,omitempty"`
	// Blob points at the result in blob storage, for results too large for
	// the workflow's history and for files.
	Blob     *BlobRef      `json:"blob,omitempty"`
	Progress *job.Progress `json:"progress,omitempty"`
	// StartedAt and Attempt are when the last attempt of an activity
	// kind's work began and which attempt it was, as its activity saw
	// them: the time and attempt of the activity's started event, so the
	// job's finished status can be built from its close event alone. Zero
	// in the results of older workers and of workflow kinds.
	StartedAt time.Time `json:"startedAt,omitzero"`
	Attempt   int       `json:"attempt,omitempty"`
	// FirstStartedAt is when the work's first attempt started, which
	// the job's status shows as its start (StartedAt is the last
	// attempt's); zero from workers before it.
	FirstStartedAt time.Time `json:"firstStartedAt,omitzero"`
}

// WorkReport is what a job's activity hands from attempt to attempt, and
// reports when an attempt fails: when the work's first attempt started,
// which Temporal does not keep once it retries. Each heartbeat carries it
// as its second detail (the first is the job.Progress, or null), which
// Temporal keeps across attempts; a failed attempt's error carries it,
// with the last progress, as its details, and so does a canceled
// attempt's cancellation; a succeeded one's Output has
// FirstStartedAt.
type WorkReport struct {
	FirstStartedAt time.Time `json:"firstStartedAt"`
	// Progress is the attempt's last progress, in a failed attempt's
	// details only (a heartbeat has it as its first detail).
	Progress *job.Progress `json:"progress,omitempty"`
}

// BlobRef points at a result in blob storage.
type BlobRef struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	// Filename, when set, is the name a download suggests.
	Filename string `json:"filename,omitempty"`
	// SHA256 is the hex digest of the content.
	SHA256 string `json:"sha256"`
}

// jobWorkflow returns the Job workflow, which runs one job: it executes
// the activity named after the job's kind, or for a workflow kind the
// kind's workflow code, and returns its output. A cancellation (DELETE, or
// from the Temporal UI/CLI) is passed to the work, waited for, and ends the
// workflow canceled; a job canceled before its work starts never starts
// it. kinds are the worker's kinds, where workflow kinds' code is found.
func jobWorkflow(kinds *job.Registry) func(ctx workflow.Context, in Input) (Output, error) {
	return func(ctx workflow.Context, in Input) (Output, error) {
		if in.Version > InputVersion {
			// Failing the task rather than the job: a newer worker can
			// still pick it up.
			panic(fmt.Sprintf("job input version %d is newer than this worker's Job workflow (%d)", in.Version, InputVersion))
		}
		out, err := runJob(ctx, in, kinds)
		afterJob(ctx, in, out, err)
		return out, err
	}
}

func runJob(ctx workflow.Context, in Input, kinds *job.Registry) (Output, error) {
	finished := false
	setState := func(ctx workflow.Context, s job.State) {
		if finished {
			return
		}
		finished = s.Terminal()
		if !finished || in.Version < 2 {
			// Visibility only: a failure here must not fail the job.
			_ = workflow.UpsertTypedSearchAttributes(ctx, StateKey.ValueSet(string(s)))
		}
		if finished {
			// The SDK skips metrics while replaying, so each job counts once.
			workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": in.Kind, "state": string(s)}).
				Counter(FinishedMetric).Inc(1)
		}
	}
	if ctx.Err() != nil {
		setState(ctx, job.StateCanceled)
		return Output{}, workflow.ErrCanceled
	}
	local := in.Version >= 2 && in.Local && !in.Flow
	if !local {
		// A local activity ends in the workflow task that would record
		// running, so such a job goes from queued to its end.
		setState(ctx, job.StateRunning)
	}
	// Listings can then tell a job that is cleaning up after a cancel.
	workflow.Go(ctx, func(gctx workflow.Context) {
		gctx.Done().Receive(gctx, nil)
		dctx, _ := workflow.NewDisconnectedContext(gctx)
		setState(dctx, job.StateCanceling)
	})

	var out Output
	var err error
	switch {
	case in.Flow:
		out, err = runFlow(ctx, in, kinds)
	case local:
		out, err = runLocalActivity(ctx, in)
	default:
		out, err = runActivity(ctx, in)
	}
	switch {
	case err == nil:
		setState(ctx, job.StateSucceeded)
		return out, nil
	case ctx.Err() != nil || temporal.IsCanceledError(err):
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		setState(dctx, job.StateCanceled)
		return Output{}, workflow.ErrCanceled
	default:
		setState(ctx, job.StateFailed)
		return Output{}, jobFailure(err)
	}
}

// runFlow runs a workflow kind's code.
func runFlow(ctx workflow.Context, in Input, kinds *job.Registry) (Output, error) {
	var runner FlowRunner
	if kinds != nil {
		if k, ok := kinds.Lookup(in.Kind); ok {
			runner, _ = k.Workflow.(FlowRunner)
		}
	}
	if runner == nil {
		// Failing the task rather than the job: a worker that has the
		// kind can still pick it up.
		panic("workflow kind " + in.Kind + " is not registered on this worker")
	}
	return runner.RunFlow(ctx, in, kinds)
}

// runActivity runs an activity kind's work as one activity.
func runActivity(ctx workflow.Context, in Input) (Output, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: in.Timeout,
		HeartbeatTimeout:    HeartbeatTimeout,
		WaitForCancellation: true,
		RetryPolicy:         RetryPolicy(in.Retry),
		Summary:             in.Kind,
	})
	work := Work{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Tenant: in.Tenant, Kind: in.Kind}
	var out Output
	err := workflow.ExecuteActivity(actx, in.Kind, in.Input, work).Get(actx, &out)
	return out, err
}

// runLocalActivity runs a short activity kind's work (job.Plan.Local) as a
// local activity: on the worker that runs the job's workflow task, with no
// activity task, events or heartbeats of its own.
func runLocalActivity(ctx workflow.Context, in Input) (Output, error) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: in.Timeout,
		RetryPolicy:         RetryPolicy(in.Retry),
		Summary:             in.Kind,
	})
	work := Work{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Tenant: in.Tenant, Kind: in.Kind}
	var out Output
	// A local activity's arguments are passed as they are, not encoded:
	// they have the types of the activity's parameters.
	err := workflow.ExecuteLocalActivity(lctx, in.Kind, in.Input, work).Get(lctx, &out)
	return out, err
}

// jobFailure turns an activity's error into the job's failure: the work's
// own message and type, without the engine's wrapping.
func jobFailure(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil)
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return temporal.NewNonRetryableApplicationError("the job's work timed out ("+timeoutErr.TimeoutType().String()+")", "timeout", nil)
	}
	return temporal.NewNonRetryableApplicationError("the job's work failed", "failed", nil)
}

// RetryPolicy is Temporal's retry policy for p, with p's defaults filled
// in.
func RetryPolicy(p job.RetryPolicy) *temporal.RetryPolicy {
	rp := &temporal.RetryPolicy{
		InitialInterval:    p.InitialInterval,
		BackoffCoefficient: p.BackoffCoefficient,
		MaximumInterval:    p.MaximumInterval,
		MaximumAttempts:    int32(p.MaximumAttempts),
	}
	if rp.InitialInterval <= 0 {
		rp.InitialInterval = time.Second
	}
	if rp.BackoffCoefficient < 1 {
		rp.BackoffCoefficient = 2
	}
	if rp.MaximumInterval <= 0 {
		rp.MaximumInterval = time.Minute
	}
	if rp.MaximumAttempts <= 0 {
		rp.MaximumAttempts = 1
	}
	return rp
}
