package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

func newEnv(t *testing.T, act func(ctx context.Context, in json.RawMessage) (workflows.Output, error)) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newSuiteEnv(t)
	env.RegisterActivityWithOptions(act, activity.RegisterOptions{Name: "k"})
	return env
}

var input = workflows.Input{Tenant: "t", Kind: "k", Input: json.RawMessage(`{}`), Timeout: time.Minute, Retry: job.RetryPolicy{MaximumAttempts: 3}}

func TestJobReturnsTheActivityOutput(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(ctx context.Context, in json.RawMessage) (workflows.Output, error) {
		return workflows.Output{Result: json.RawMessage(`{"n":1}`), Progress: &job.Progress{Current: 1, Total: 1}}, nil
	})
	env.ExecuteWorkflow(workflows.JobWorkflowName, input)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var out workflows.Output
	require.NoError(t, env.GetWorkflowResult(&out))
	require.JSONEq(t, `{"n":1}`, string(out.Result))
	require.Equal(t, int64(1), out.Progress.Current)
}

func TestJobRetriesPerPlanThenFailsWithTheWorksMessage(t *testing.T) {
	t.Parallel()
	calls := 0
	env := newEnv(t, func(ctx context.Context, in json.RawMessage) (workflows.Output, error) {
		calls++
		return workflows.Output{}, temporal.NewApplicationError("upstream said no", "work-failed")
	})
	env.ExecuteWorkflow(workflows.JobWorkflowName, input)
	require.Equal(t, 3, calls)
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, "upstream said no", appErr.Message())
	require.Equal(t, "work-failed", appErr.Type())
}

func TestJobNonRetryableFailsAtOnce(t *testing.T) {
	t.Parallel()
	calls := 0
	env := newEnv(t, func(ctx context.Context, in json.RawMessage) (workflows.Output, error) {
		calls++
		return workflows.Output{}, temporal.NewNonRetryableApplicationError("refused", "destination-refused", nil)
	})
	env.ExecuteWorkflow(workflows.JobWorkflowName, input)
	require.Equal(t, 1, calls)
	require.Error(t, env.GetWorkflowError())
}

func TestJobCanceledBeforeStartNeverRunsTheWork(t *testing.T) {
	t.Parallel()
	calls := 0
	env := newEnv(t, func(ctx context.Context, in json.RawMessage) (workflows.Output, error) {
		calls++
		return workflows.Output{}, nil
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, 0)
	env.ExecuteWorkflow(workflows.JobWorkflowName, input)
	require.Zero(t, calls)
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()))
}
