package saga_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/examples/saga"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// newOrderEnv is a test workflow environment (time skips) running the
// order kind inside jobgate's Job workflow, with real activities on a shop
// of 10 books and alice's 100.00.
func newOrderEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *saga.Inventory, *saga.Payments) {
	t.Helper()
	env := newQuietEnv()
	inv := saga.NewInventory(map[string]int{"book": 10})
	pay := saga.NewPayments(map[string]int64{"alice": 100_00})
	acts := &saga.Activities{Inventory: inv, Payments: pay}
	kinds, err := job.NewRegistry(saga.Kind(acts))
	require.NoError(t, err)
	workflows.Register(env, kinds)
	env.RegisterActivity(acts)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "order-1"})
	return env, inv, pay
}

// newQuietEnv is a test workflow environment that logs nothing.
func newQuietEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger{})
	return s.NewTestWorkflowEnvironment()
}

func orderInput(order string) workflows.Input {
	return workflows.Input{Tenant: "t", Kind: "order", Input: json.RawMessage(order), Timeout: 48 * time.Hour, Flow: true}
}

// With no decision in time the order fails, undone.
func TestOrderApprovalTimesOut(t *testing.T) {
	t.Parallel()
	env, inv, pay := newOrderEnv(t)
	env.ExecuteWorkflow(workflows.JobWorkflowName, orderInput(`{"customer":"alice","items":[{"sku":"book","quantity":3}],"amount":1500,"approvalSeconds":3600}`))

	require.True(t, env.IsWorkflowCompleted())
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &appErr)
	require.Equal(t, "approval-timeout", appErr.Type())
	require.Equal(t, "no approval within 1h0m0s", appErr.Message())
	require.Equal(t, 10, inv.Stock("book"))
	require.EqualValues(t, 100_00, pay.Balance("alice"))
}

// A decision delivered as the Update the API sends is taken, and the
// order ships; one refused by the validator leaves it waiting.
func TestOrderApprovalByUpdate(t *testing.T) {
	t.Parallel()
	env, inv, pay := newOrderEnv(t)
	var refused, taken error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(saga.ApprovalInput, "u1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { refused = err },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, json.RawMessage(`{"approved":false}`))
		env.UpdateWorkflow(saga.ApprovalInput, "u2", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { taken = err },
			OnAccept: func() {}, OnComplete: func(_ any, err error) { taken = err },
		}, json.RawMessage(`{"approved":true,"comment":"ok"}`))
	}, time.Hour)
	env.ExecuteWorkflow(workflows.JobWorkflowName, orderInput(`{"customer":"alice","items":[{"sku":"book","quantity":3}],"amount":1500}`))

	require.NoError(t, env.GetWorkflowError())
	require.ErrorContains(t, refused, "a rejection needs a comment saying why")
	require.NoError(t, taken)
	var out workflows.Output
	require.NoError(t, env.GetWorkflowResult(&out))
	var r saga.Result
	require.NoError(t, json.Unmarshal(out.Result, &r))
	require.Equal(t, saga.Result{Reservation: "res-order-1", Payment: "pay-order-1", Tracking: "trk-order-1", Approval: r.Approval}, r)
	require.True(t, r.Approval.Approved)
	require.True(t, inv.Shipped("order-1"))
	require.Equal(t, 7, inv.Stock("book"))
	require.EqualValues(t, 85_00, pay.Balance("alice"))
}

// fraudChecks are the activities of the versioning example in
// docs/kinds.md ("Determinism"): a fraud check added to a kind's code, in
// front of a step the kind had before.
type fraudChecks struct{ checked []string }

func (f *fraudChecks) CheckFraud(_ context.Context, d saga.Details) error {
	f.checked = append(f.checked, d.ID)
	return nil
}

func (f *fraudChecks) Confirm(_ context.Context, d saga.Details) (string, error) {
	return "confirmed " + d.ID, nil
}

// orderSteps is what the three versions of the kind below share: their
// activities, step options and the order's details.
func orderSteps(ctx workflow.Context, o saga.Order) (*fraudChecks, flow.StepOptions, saga.Details) {
	return nil, flow.StepOptions{}, saga.Details{ID: workflow.GetInfo(ctx).WorkflowExecution.ID, Order: o}
}

func confirm(ctx workflow.Context, a *fraudChecks, d saga.Details) (any, error) {
	var r string
	err := flow.Run(ctx, "confirm", flow.StepOptions{}, a.Confirm, d).Get(ctx, &r)
	return r, err
}

// uncheckedWorkflow is the kind before the change.
func uncheckedWorkflow(ctx workflow.Context, o saga.Order) (any, error) {
	a, _, d := orderSteps(ctx, o)
	return confirm(ctx, a, d)
}

// fraudCheckedWorkflow is the change as the docs make it: the check
// behind workflow.GetVersion.
func fraudCheckedWorkflow(ctx workflow.Context, o saga.Order) (any, error) {
	a, stepOptions, d := orderSteps(ctx, o)
	if workflow.GetVersion(ctx, "fraud-check", workflow.DefaultVersion, 1) >= 1 {
		if err := flow.Run(ctx, "fraud-check", stepOptions, a.CheckFraud, d).Get(ctx, nil); err != nil {
			return nil, err
		}
	}
	return confirm(ctx, a, d)
}

// unversionedWorkflow is the same change without the version.
func unversionedWorkflow(ctx workflow.Context, o saga.Order) (any, error) {
	a, stepOptions, d := orderSteps(ctx, o)
	if err := flow.Run(ctx, "fraud-check", stepOptions, a.CheckFraud, d).Get(ctx, nil); err != nil {
		return nil, err
	}
	return confirm(ctx, a, d)
}

func checkedOrderKinds(t *testing.T, wf func(workflow.Context, saga.Order) (any, error), acts *fraudChecks) *job.Registry {
	t.Helper()
	kinds, err := job.NewRegistry(flow.Define(flow.Spec[saga.Order]{Name: "checked-order", Workflow: wf, Activities: []any{acts}}))
	require.NoError(t, err)
	return kinds
}

const checkedOrderInput = `{"customer":"alice","items":[{"sku":"book","quantity":1}],"amount":100}`

// The fraud check docs/kinds.md adds behind workflow.GetVersion runs, as
// a step before the confirmation, in a job started on the code that has
// it.
func TestVersionedStepRunsInNewJobs(t *testing.T) {
	t.Parallel()
	env := newQuietEnv()
	checks := &fraudChecks{}
	workflows.Register(env, checkedOrderKinds(t, fraudCheckedWorkflow, checks))
	env.RegisterActivity(checks)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "order-2"})
	env.ExecuteWorkflow(workflows.JobWorkflowName, workflows.Input{Tenant: "t", Kind: "checked-order",
		Input: json.RawMessage(checkedOrderInput), Timeout: time.Hour, Flow: true})

	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"order-2"}, checks.checked)
	var out workflows.Output
	require.NoError(t, env.GetWorkflowResult(&out))
	require.JSONEq(t, `"confirmed order-2"`, string(out.Result))
}

// A job run to its end on the code before the change, on a real Temporal
// server, replays on the code with the versioned check (it takes the old
// path) and fails to replay on the same check without the version: what
// docs/kinds.md says GetVersion is for.
func TestVersionedChangeReplaysJobsFromBefore(t *testing.T) {
	t.Parallel()
	jobs := startJobs(t, checkedOrderKinds(t, uncheckedWorkflow, &fraudChecks{}))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	j, _, err := jobs.engine.Submit(ctx, job.SubmitRequest{Tenant: jobs.queue, Kind: "checked-order", Input: json.RawMessage(checkedOrderInput)})
	require.NoError(t, err)
	var out workflows.Output
	require.NoError(t, jobs.temporal.GetWorkflow(ctx, j.ID, "").Get(ctx, &out))
	require.JSONEq(t, `"confirmed `+j.ID+`"`, string(out.Result))
	history := historyOf(t, jobs.temporal, j.ID)

	replay := func(wf func(workflow.Context, saga.Order) (any, error)) error {
		return replayOn(checkedOrderKinds(t, wf, &fraudChecks{}), history, j.ID)
	}
	require.NoError(t, replay(uncheckedWorkflow), "the history replays on its own code")
	require.NoError(t, replay(fraudCheckedWorkflow), "the versioned change replays a job from before it")
	require.ErrorContains(t, replay(unversionedWorkflow), "nondeterministic", "the unversioned change breaks it")
}
