package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/client"
)

func mustClient(t *testing.T, e *env, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(e.URL, opts...)
	require.NoError(t, err)
	return c
}

// The Go client drives the real server through every endpoint: a short job
// in one round trip, a long one waited for by long-polling, its result, a
// cancellation, and typed errors from problem+json.
func TestClientAgainstTheServer(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{apiKeys: map[string]string{"alpha": keyA}})
	c := mustClient(t, e, client.WithAPIKey(keyA), client.WithLongPoll(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	quick, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}, Wait: 30 * time.Second})
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, quick.State)
	var slept struct{ Slept int }
	require.NoError(t, c.ResultJSON(ctx, quick.ID, &slept))
	require.Equal(t, 1, slept.Slept)

	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}, IdempotencyKey: "client-" + e.TaskQueue})
	require.NoError(t, err)
	require.Equal(t, client.StateQueued, j.State)
	require.Positive(t, j.RetryAfter)
	again, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}, IdempotencyKey: "client-" + e.TaskQueue})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, j.ID, again.ID)
	_, err = c.Result(ctx, j.ID)
	require.ErrorIs(t, err, client.ErrConflict, "no result before it finishes")

	done, err := c.Wait(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, done.State)
	res, err := c.Result(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, "application/json", res.ContentType)
	require.NoError(t, res.Body.Close())

	long, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 600}})
	require.NoError(t, err)
	canceling, err := c.Cancel(ctx, long.ID)
	require.NoError(t, err)
	require.Contains(t, []client.State{client.StateCanceling, client.StateCanceled}, canceling.State)
	ended, err := c.Wait(ctx, long.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateCanceled, ended.State)
	require.NotNil(t, ended.Error)

	_, err = c.Get(ctx, "7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11")
	require.ErrorIs(t, err, client.ErrNotFound)
	_, err = c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": -1}})
	require.ErrorIs(t, err, client.ErrInvalid)
	var p *client.Problem
	require.True(t, errors.As(err, &p))
	require.Equal(t, 422, p.Status)
	require.Equal(t, "/input/seconds", p.Errors[0].Field)

	anonymous := mustClient(t, e)
	_, err = anonymous.Get(ctx, j.ID)
	require.True(t, errors.As(err, &p))
	require.Equal(t, 401, p.Status)
}
