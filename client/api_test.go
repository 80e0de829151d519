package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/client"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
	"github.com/jobgate/jobgate/job"
)

// These tests run the client against jobgate's real HTTP layer (httpapi)
// over an in-memory job service: the answers are the server's own, not an
// imitation of them. client_test.go does too, through apiServer
// (server_test.go), which also records requests and injects the answers a
// proxy or another server may give.

// mustAPI starts the API over httpapitest and a client of it.
func mustAPI(tb testing.TB, cfg httpapi.Config, opts ...client.Option) (*httpapitest.Server, *client.Client) {
	tb.Helper()
	srv := httpapitest.NewServer(tb, cfg)
	c, err := client.New(srv.URL, append([]client.Option{client.WithHTTPClient(srv.Client())}, opts...)...)
	require.NoError(tb, err)
	return srv, c
}

// onSubmit calls fn with the first job's id as soon as the service holds
// it, in another goroutine.
func onSubmit(tb testing.TB, srv *httpapitest.Server, fn func(id string)) {
	tb.Helper()
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for len(srv.Jobs.IDs()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if ids := srv.Jobs.IDs(); len(ids) > 0 {
			fn(ids[0])
		}
	}()
}

func TestClientWithAPI(t *testing.T) {
	t.Parallel()
	srv, c := mustAPI(t, httpapi.Config{})
	ctx := t.Context()

	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}, IdempotencyKey: "order-7"})
	require.NoError(t, err)
	require.Equal(t, client.StateQueued, j.State)
	require.Equal(t, "sleep", j.Kind)
	require.Equal(t, 5*time.Second, j.RetryAfter)
	require.NotEmpty(t, j.ETag)
	require.False(t, j.Replayed)

	again, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}, IdempotencyKey: "order-7"})
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, j.ID, again.ID)
	_, err = c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 6}, IdempotencyKey: "order-7"})
	require.ErrorIs(t, err, client.ErrInvalid)

	srv.Jobs.Start(j.ID)
	srv.Jobs.Report(j.ID, job.Progress{Current: 1, Total: 5, Message: "slept 1 of 5 seconds"})
	running, changed, err := c.GetIfChanged(ctx, j.ID, j.ETag)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, client.StateRunning, running.State)
	require.Equal(t, 20, *running.Progress.Percent)
	_, changed, err = c.GetIfChanged(ctx, j.ID, running.ETag)
	require.NoError(t, err)
	require.False(t, changed)

	done := make(chan *client.Job, 1)
	go func() {
		j, err := c.Wait(ctx, j.ID)
		if err != nil {
			j = nil
		}
		done <- j
	}()
	srv.Jobs.Succeed(j.ID, map[string]int{"slept": 5})
	select {
	case got := <-done:
		require.NotNil(t, got, "Wait failed")
		require.Equal(t, client.StateSucceeded, got.State)
		require.Equal(t, "/v1/jobs/"+j.ID+"/result", got.ResultURL)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return when the job succeeded")
	}

	var out struct{ Slept int }
	require.NoError(t, c.ResultJSON(ctx, j.ID, &out))
	require.Equal(t, 5, out.Slept)
	res, err := c.Result(ctx, j.ID)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "application/json", res.ContentType)
	require.EqualValues(t, len(`{"slept":5}`), res.ContentLength)
}

// Submit with Wait: the server holds the request, the job ends, the client
// follows the 303 and returns the succeeded job.
func TestClientSubmitWaitWithAPI(t *testing.T) {
	t.Parallel()
	srv, c := mustAPI(t, httpapi.Config{})
	onSubmit(t, srv, func(id string) { srv.Jobs.Succeed(id, "ok") })
	j, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}, Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, j.State)
}

func TestClientCancelWithAPI(t *testing.T) {
	t.Parallel()
	srv, c := mustAPI(t, httpapi.Config{})
	ctx := t.Context()
	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}})
	require.NoError(t, err)
	srv.Jobs.Start(j.ID)

	canceling, err := c.Cancel(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateCanceling, canceling.State)
	srv.Jobs.Canceled(j.ID)
	canceled, err := c.Cancel(ctx, j.ID)
	require.NoError(t, err, "204: already canceled")
	require.Equal(t, client.StateCanceled, canceled.State)
	require.NotNil(t, canceled.Error)

	other, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}})
	require.NoError(t, err)
	srv.Jobs.Succeed(other.ID, "ok")
	_, err = c.Cancel(ctx, other.ID)
	require.ErrorIs(t, err, client.ErrConflict)
}

// The server's problems match the client's errors.
func TestClientErrorsWithAPI(t *testing.T) {
	t.Parallel()
	srv, c := mustAPI(t, httpapi.Config{})
	ctx := t.Context()
	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}})
	require.NoError(t, err)

	_, err = c.Get(ctx, "00000000-0000-4000-8000-999999999999")
	require.ErrorIs(t, err, client.ErrNotFound)

	_, err = c.Result(ctx, j.ID)
	require.ErrorIs(t, err, client.ErrConflict)
	var p *client.Problem
	require.ErrorAs(t, err, &p)
	require.Equal(t, client.StateQueued, p.State)

	_, err = c.Submit(ctx, client.SubmitRequest{Kind: "nap"})
	require.ErrorIs(t, err, client.ErrInvalid)
	_, err = c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": -1}})
	require.ErrorIs(t, err, client.ErrInvalid)

	srv.Jobs.FailNext("Submit", &job.QuotaError{Active: 1, Limit: 1})
	_, err = c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}})
	require.ErrorIs(t, err, client.ErrRateLimited)

	srv.Jobs.FailNext("Get", job.ErrUnavailable)
	_, err = c.Get(ctx, j.ID)
	require.ErrorIs(t, err, client.ErrUnavailable)

	srv.Jobs.Succeed(j.ID, "ok")
	srv.Jobs.Expire(j.ID)
	_, err = c.Get(ctx, j.ID)
	require.ErrorIs(t, err, client.ErrGone)
}

// Wait ends with its context while the job runs on.
func TestClientWaitEndsWithContextWithAPI(t *testing.T) {
	t.Parallel()
	srv, c := mustAPI(t, httpapi.Config{}, client.WithLongPoll(time.Second))
	j, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 5}})
	require.NoError(t, err)
	srv.Jobs.Start(j.ID)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Wait(ctx, j.ID)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	require.Equal(t, job.StateRunning, srv.Jobs.Job(j.ID).State)
}
