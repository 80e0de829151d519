package workflows_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

func newSuiteEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env, nil)
	return env
}

// When a job ends, it starts its webhook (for every outcome) and the
// cleanup of a result in blob storage, passing them what they need.
func TestJobStartsItsFollowers(t *testing.T) {
	t.Parallel()
	env := newSuiteEnv(t)
	blob := &workflows.BlobRef{Key: "results/job-1/jobs.csv", Size: 3, ContentType: "text/csv", SHA256: "abc"}
	var work *workflows.Work
	env.RegisterActivityWithOptions(func(ctx context.Context, in json.RawMessage, w *workflows.Work) (workflows.Output, error) {
		work = w
		return workflows.Output{Blob: blob}, nil
	}, activity.RegisterOptions{Name: "k"})
	var cleanup workflows.CleanupInput
	var hook workflows.WebhookInput
	env.OnWorkflow(workflows.CleanupWorkflowName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.CleanupInput) error {
		cleanup = in
		return nil
	})
	env.OnWorkflow(workflows.WebhookWorkflowName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.WebhookInput) (workflows.WebhookOutcome, error) {
		hook = in
		return workflows.WebhookOutcome{State: job.CallbackDelivered}, nil
	})
	in := input
	in.CallbackURL = "https://client.example/hooks"
	in.ResultTTL = time.Hour
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "job-1"})
	env.ExecuteWorkflow(workflows.JobWorkflowName, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, &workflows.Work{ID: "job-1", Tenant: "t", Kind: "k"}, work)
	require.Equal(t, blob.Key, cleanup.Key)
	require.Greater(t, cleanup.After, time.Hour, "deleted once the result expired")
	require.Equal(t, workflows.WebhookInput{JobID: "job-1", Tenant: "t", URL: in.CallbackURL}, hook)
}

// A job canceled before it started still sends its webhook, and starts no
// cleanup: it has no result.
func TestCanceledJobSendsItsWebhook(t *testing.T) {
	t.Parallel()
	env := newSuiteEnv(t)
	env.RegisterActivityWithOptions(func(ctx context.Context, in json.RawMessage, w *workflows.Work) (workflows.Output, error) {
		return workflows.Output{}, nil
	}, activity.RegisterOptions{Name: "k"})
	hooks := 0
	env.OnWorkflow(workflows.WebhookWorkflowName, mock.Anything, mock.Anything).Return(workflows.WebhookOutcome{}, nil).Run(func(mock.Arguments) { hooks++ })
	env.RegisterDelayedCallback(env.CancelWorkflow, 0)
	in := input
	in.CallbackURL = "https://client.example/hooks"
	env.ExecuteWorkflow(workflows.JobWorkflowName, in)
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()))
	require.Equal(t, 1, hooks)
}

func webhookEnv(t *testing.T, deliver func(context.Context, workflows.WebhookInput, workflows.WebhookMessage) (workflows.WebhookAttempt, error)) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newSuiteEnv(t)
	env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.WebhookInput) (workflows.WebhookMessage, error) {
		return workflows.WebhookMessage{ID: "msg_1", Body: json.RawMessage(`{}`)}, nil
	}, activity.RegisterOptions{Name: workflows.RenderWebhookActivity})
	env.RegisterActivityWithOptions(deliver, activity.RegisterOptions{Name: workflows.DeliverWebhookActivity})
	return env
}

// Delivery is retried until a 2xx, and stops at once on a 410; the
// outcome counts the attempts.
func TestJobWebhookOutcomes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		answers []int
		want    workflows.WebhookOutcome
	}{
		{"delivered after retries", []int{500, 503, 200}, workflows.WebhookOutcome{State: job.CallbackDelivered, Attempts: 3, LastStatus: 200, LastAttemptAt: at}},
		{"gone", []int{500, 410}, workflows.WebhookOutcome{State: job.CallbackGone, Attempts: 2, LastStatus: 410, LastAttemptAt: at, LastError: "gone"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			env := webhookEnv(t, func(ctx context.Context, in workflows.WebhookInput, msg workflows.WebhookMessage) (workflows.WebhookAttempt, error) {
				status := tc.answers[calls]
				calls++
				a := workflows.WebhookAttempt{Attempt: calls, Status: status, At: at}
				switch {
				case status < 300:
					return a, nil
				case status == 410:
					return a, temporal.NewApplicationErrorWithOptions("gone", workflows.WebhookGone, temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{a}})
				}
				return a, temporal.NewApplicationErrorWithOptions("retry", "http-500", temporal.ApplicationErrorOptions{Details: []any{a}})
			})
			env.ExecuteWorkflow(workflows.WebhookWorkflowName, workflows.WebhookInput{JobID: "j", Tenant: "t", URL: "https://x"})
			require.NoError(t, env.GetWorkflowError())
			var got workflows.WebhookOutcome
			require.NoError(t, env.GetWorkflowResult(&got))
			require.Equal(t, tc.want, got)
			require.Equal(t, len(tc.answers), calls)
		})
	}
}

// The cleanup deletes the result only after the TTL.
func TestJobCleanupWaitsForExpiry(t *testing.T) {
	t.Parallel()
	env := newSuiteEnv(t)
	var deletedAt time.Time
	start := env.Now()
	env.RegisterActivityWithOptions(func(ctx context.Context, key string) error {
		require.Equal(t, "results/j/r.json", key)
		deletedAt = env.Now()
		return nil
	}, activity.RegisterOptions{Name: workflows.DeleteResultActivity})
	env.ExecuteWorkflow(workflows.CleanupWorkflowName, workflows.CleanupInput{Key: "results/j/r.json", After: 24 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	require.GreaterOrEqual(t, deletedAt.Sub(start), 24*time.Hour)
}
