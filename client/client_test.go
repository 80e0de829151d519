package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/client"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
	"github.com/jobgate/jobgate/job"
)

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		base string
		opts []client.Option
		ok   bool
	}{
		{"host", "http://localhost:8080", nil, true},
		{"https with path prefix", "https://example.com/jobgate/", nil, true},
		{"all options", "http://localhost:8080", []client.Option{client.WithHTTPClient(&http.Client{}), client.WithAPIKey("k"), client.WithLongPoll(0)}, true},
		{"empty", "", nil, false},
		{"no scheme", "localhost:8080", nil, false},
		{"path only", "/v1", nil, false},
		{"other scheme", "ftp://example.com", nil, false},
		{"query", "http://localhost:8080/?x=1", nil, false},
		{"unparsable", "http://[::1", nil, false},
		{"nil HTTP client", "http://localhost:8080", []client.Option{client.WithHTTPClient(nil)}, false},
		{"negative long-poll", "http://localhost:8080", []client.Option{client.WithLongPoll(-time.Second)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tc.base, tc.opts...)
			if !tc.ok {
				require.Error(t, err)
				require.Nil(t, c)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, c)
		})
	}
}

func TestBaseURLWithPathPrefix(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{"", "/"} {
		t.Run("suffix "+strconv.Quote(suffix), func(t *testing.T) {
			t.Parallel()
			s := mustStartAPI(t, apiOptions{prefix: "/api", afterSubmit: succeed, seeOtherWithoutBody: true})
			c := mustNew(t, s.URL()+suffix)

			// The 303's Location is under the prefix, and so is the status
			// read that follows it.
			j, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}, Wait: 5 * time.Second})
			require.NoError(t, err)
			require.Equal(t, client.StateSucceeded, j.State)
			require.Equal(t, s.URL()+"/v1/jobs/"+j.ID+"/result", j.ResultURL)
			require.Len(t, s.received(http.MethodPost, "/v1/jobs"), 1)
			require.Len(t, s.received(http.MethodGet, "/v1/jobs/"+j.ID), 1)
		})
	}
}

// succeed ends a job as soon as it is accepted.
func succeed(jobs *httpapitest.Jobs, id string) { jobs.Succeed(id, map[string]int{"slept": 1}) }

func TestSubmitAccepted(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{apiKey: "s3cret"})
	c := mustNew(t, s.URL(), client.WithAPIKey("s3cret"))

	j, err := c.Submit(t.Context(), client.SubmitRequest{
		Kind:           "sleep",
		Input:          json.RawMessage(`{"seconds":2}`),
		CallbackURL:    "https://client.example/hooks",
		IdempotencyKey: "order-42",
	})
	require.NoError(t, err)
	require.NotEmpty(t, j.ID)
	require.Equal(t, "sleep", j.Kind)
	require.Equal(t, client.StateQueued, j.State)
	require.False(t, j.State.Terminal())
	require.Equal(t, "/v1/jobs/"+j.ID, j.StatusURL)
	require.Empty(t, j.ResultURL)
	require.False(t, j.CreatedAt.IsZero())
	require.NotNil(t, j.EstimatedCompletion)
	require.Nil(t, j.StartedAt)
	require.Nil(t, j.CompletedAt)
	require.Equal(t, 1, j.Attempt)
	require.JSONEq(t, `{"state":"pending","attempts":0}`, string(j.Callback))
	require.Nil(t, j.Error)
	// What the headers said: the kind's expected two seconds.
	require.Equal(t, 2*time.Second, j.RetryAfter)
	require.NotEmpty(t, j.ETag)
	require.False(t, j.Replayed)

	reqs := s.received(http.MethodPost, "/v1/jobs")
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.Equal(t, "Bearer s3cret", r.header.Get("Authorization"))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, "order-42", r.header.Get("Idempotency-Key"))
	require.Empty(t, r.header.Values("Prefer"))
	require.JSONEq(t, `{"kind":"sleep","input":{"seconds":2},"callbackUrl":"https://client.example/hooks"}`, r.body)

	t.Run("without the API key", func(t *testing.T) {
		t.Parallel()
		_, err := mustNew(t, s.URL()).Submit(t.Context(), client.SubmitRequest{Kind: "sleep"})
		p := mustProblem(t, err)
		require.Equal(t, http.StatusUnauthorized, p.Status)
		require.NotEmpty(t, p.Title)
	})
}

func TestSubmitPrefer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		wait       time.Duration
		async      bool
		wantPrefer string
	}{
		{"no preference", 0, false, ""},
		{"whole seconds", 3 * time.Second, false, "wait=3"},
		{"rounded up", 1500 * time.Millisecond, false, "wait=2"},
		{"under a second", time.Millisecond, false, "wait=1"},
		{"respond-async", 0, true, "respond-async"},
		{"both", 5 * time.Second, true, "respond-async, wait=5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The job ends as it is accepted, so that no wait holds the test.
			s := mustStartAPI(t, apiOptions{afterSubmit: succeed})
			j, err := mustNew(t, s.URL()).Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}, Wait: tc.wait, RespondAsync: tc.async})
			require.NoError(t, err)
			require.Equal(t, client.StateSucceeded, j.State)
			reqs := s.received(http.MethodPost, "/v1/jobs")
			require.Len(t, reqs, 1)
			require.Equal(t, tc.wantPrefer, reqs[0].header.Get("Prefer"))
		})
	}
}

func TestSubmitEndedWithinWait(t *testing.T) {
	t.Parallel()
	fail := func(jobs *httpapitest.Jobs, id string) { jobs.Fail(id, "doomed", "it was never going to work") }
	cases := []struct {
		name                string
		end                 func(jobs *httpapitest.Jobs, id string)
		seeOtherWithoutBody bool
		wantState           client.State
		// wantStatusReads is how many status requests the client made after
		// the submission.
		wantStatusReads int
	}{
		{"303 with the status body: one round trip", succeed, false, client.StateSucceeded, 0},
		{"303 without a body (a proxy dropped it): the status is read", succeed, true, client.StateSucceeded, 1},
		{"200 for a failed job", fail, false, client.StateFailed, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustStartAPI(t, apiOptions{afterSubmit: tc.end, seeOtherWithoutBody: tc.seeOtherWithoutBody})
			// An http.Client that follows redirects: the client must not let
			// it follow the 303 to the result.
			c := mustNew(t, s.URL(), client.WithHTTPClient(&http.Client{}))

			j, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}, Wait: 5 * time.Second})
			require.NoError(t, err)
			require.Equal(t, tc.wantState, j.State)
			require.True(t, j.State.Terminal())
			require.NotNil(t, j.CompletedAt)
			require.Equal(t, "wait=5", s.received(http.MethodPost, "/v1/jobs")[0].header.Get("Prefer"))
			require.Empty(t, s.received(http.MethodGet, "/v1/jobs/"+j.ID+"/result"), "the 303 to the result was followed")
			reads := s.received(http.MethodGet, "/v1/jobs/"+j.ID)
			require.Len(t, reads, tc.wantStatusReads)
			for _, r := range reads {
				require.Equal(t, "redirect=false", r.query)
			}
			switch tc.wantState {
			case client.StateSucceeded:
				require.Equal(t, "/v1/jobs/"+j.ID+"/result", j.ResultURL)
				require.Nil(t, j.Error)
			case client.StateFailed:
				require.Empty(t, j.ResultURL)
				require.NotNil(t, j.Error)
				require.Contains(t, j.Error.Title, "doomed")
				require.Equal(t, "it was never going to work", j.Error.Detail)
			}
		})
	}
}

func TestSubmitIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())
	req := client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 9}, IdempotencyKey: "order-7"}

	first, err := c.Submit(t.Context(), req)
	require.NoError(t, err)
	require.False(t, first.Replayed)

	again, err := c.Submit(t.Context(), req)
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, first.ID, again.ID)

	req.Input = map[string]int{"seconds": 10}
	_, err = c.Submit(t.Context(), req)
	require.ErrorIs(t, err, client.ErrInvalid)
	p := mustProblem(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.Equal(t, "https://jobgate.dev/problems/idempotency-key-reused", p.Type)
}

func TestSubmitInvalid(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())

	_, err := c.Submit(t.Context(), client.SubmitRequest{Input: map[string]int{"seconds": 1}})
	require.ErrorIs(t, err, client.ErrInvalid)
	p := mustProblem(t, err)
	require.NotEmpty(t, p.Errors)
	require.Equal(t, "/kind", p.Errors[0].Field)
	require.Contains(t, err.Error(), "/kind: ")

	_, err = c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: func() {}})
	require.Error(t, err)
	require.NotErrorAs(t, err, new(*client.Problem), "a client-side encoding error is not a problem answer")
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())

	t.Run("running job", func(t *testing.T) {
		t.Parallel()
		id := s.add(t, job.StateRunning, 3)
		j, err := c.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, id, j.ID)
		require.Equal(t, client.StateRunning, j.State)
		require.NotNil(t, j.StartedAt)
		require.InDelta(t, 3*time.Second, j.RetryAfter, float64(time.Second))
		require.NotEmpty(t, j.ETag)
		require.Nil(t, j.Callback)
		reqs := s.received(http.MethodGet, "/v1/jobs/"+id)
		require.Len(t, reqs, 1)
		require.Equal(t, "redirect=false", reqs[0].query)
		require.Empty(t, reqs[0].header.Get("Prefer"))
	})
	t.Run("succeeded job: 200, not the redirect", func(t *testing.T) {
		t.Parallel()
		id := s.add(t, job.StateSucceeded, 1)
		j, err := c.Get(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, client.StateSucceeded, j.State)
		require.Equal(t, "/v1/jobs/"+id+"/result", j.ResultURL)
		require.Zero(t, j.RetryAfter)
	})
	t.Run("id is escaped into one path segment", func(t *testing.T) {
		t.Parallel()
		_, err := c.Get(t.Context(), "a/b c?#")
		require.ErrorIs(t, err, client.ErrNotFound)
		require.Len(t, s.received(http.MethodGet, "/v1/jobs/a%2Fb%20c%3F%23"), 1)
	})
	t.Run("not a job id", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"", ".", ".."} {
			_, err := c.Get(t.Context(), id)
			require.Error(t, err)
			require.NotErrorAs(t, err, new(*client.Problem))
		}
	})
}

func TestGetIfChanged(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())
	id := s.add(t, job.StateRunning, 10)

	j, err := c.Get(t.Context(), id)
	require.NoError(t, err)
	require.NotEmpty(t, j.ETag)

	same, changed, err := c.GetIfChanged(t.Context(), id, j.ETag)
	require.NoError(t, err)
	require.False(t, changed)
	require.Nil(t, same)
	reqs := s.received(http.MethodGet, "/v1/jobs/"+id)
	require.Equal(t, j.ETag, reqs[len(reqs)-1].header.Get("If-None-Match"))

	s.Jobs.Report(id, job.Progress{Current: 4, Total: 10, Message: "4 of 10"})
	next, changed, err := c.GetIfChanged(t.Context(), id, j.ETag)
	require.NoError(t, err)
	require.True(t, changed)
	require.NotEqual(t, j.ETag, next.ETag)
	require.NotNil(t, next.Progress)
	require.Equal(t, 40, *next.Progress.Percent)
	require.Equal(t, "4 of 10", next.Progress.Message)

	fresh, changed, err := c.GetIfChanged(t.Context(), id, "")
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, next.ETag, fresh.ETag)
	reqs = s.received(http.MethodGet, "/v1/jobs/"+id)
	require.Empty(t, reqs[len(reqs)-1].header.Get("If-None-Match"))

	_, _, err = c.GetIfChanged(t.Context(), "00000000-0000-4000-8000-999999999999", j.ETag)
	require.ErrorIs(t, err, client.ErrNotFound)
}

func TestWaitPollsAfterRetryAfter(t *testing.T) {
	t.Parallel()
	// A server without long-poll: it answers at once, with Retry-After: 1
	// (the job is expected to take a second). The job reports progress and
	// succeeds on the third status poll.
	s := mustStartAPI(t, apiOptions{noLongPoll: true, onStatusRead: func(jobs *httpapitest.Jobs, id string, n int) {
		jobs.Report(id, job.Progress{Current: int64(n), Total: 3})
		if n == 3 {
			jobs.Succeed(id, "ok")
		}
	}})
	c := mustNew(t, s.URL())
	queued, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}})
	require.NoError(t, err)

	j, err := c.Wait(t.Context(), queued.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, j.State)
	require.Equal(t, int64(3), j.Progress.Current)

	polls := s.received(http.MethodGet, "/v1/jobs/"+queued.ID)
	require.Len(t, polls, 3)
	for i, p := range polls {
		require.Equal(t, "wait=30", p.header.Get("Prefer"))
		require.Equal(t, "redirect=false", p.query)
		if i > 0 {
			require.GreaterOrEqual(t, p.at.Sub(polls[i-1].at), time.Second, "poll %d came before the Retry-After", i+1)
		}
	}
}

func TestWaitLongPoll(t *testing.T) {
	t.Parallel()

	t.Run("the server answers when the job changes", func(t *testing.T) {
		t.Parallel()
		// Retry-After is 60 (a job of 600 s): it would stall the test if
		// Wait slept it.
		s := mustStartAPI(t, apiOptions{})
		c := mustNew(t, s.URL())
		id := s.add(t, job.StateQueued, 600)
		path := "/v1/jobs/" + id

		done := goWait(t, c, id)
		require.Eventually(t, func() bool { return s.heldReads() == 1 }, 5*time.Second, 5*time.Millisecond)
		s.Jobs.Start(id)
		s.Jobs.Report(id, job.Progress{Current: 1, Total: 4})
		// Wait asks again at once, and is held again.
		require.Eventually(t, func() bool { return len(s.received(http.MethodGet, path)) >= 2 && s.heldReads() == 1 },
			5*time.Second, 5*time.Millisecond)
		s.Jobs.Succeed(id, "ok")

		res := mustReceive(t, done, 5*time.Second)
		require.NoError(t, res.err)
		require.Equal(t, client.StateSucceeded, res.job.State)
		for _, p := range s.received(http.MethodGet, path) {
			require.Equal(t, "wait=30", p.header.Get("Prefer"))
		}
	})

	// The first request is held a second, comes back unchanged, and Wait
	// asks again at once rather than sleeping the Retry-After of 60s.
	runsOut := []struct {
		name       string
		longPoll   time.Duration
		maxWait    time.Duration
		wantPrefer string
	}{
		{"the long-poll runs out", time.Second, 0, "wait=1"},
		{"the server caps the wait below the long-poll", 30 * time.Second, time.Second, "wait=30"},
	}
	for _, tc := range runsOut {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustStartAPI(t, apiOptions{maxWait: tc.maxWait})
			c := mustNew(t, s.URL(), client.WithLongPoll(tc.longPoll))
			id := s.add(t, job.StateRunning, 600)
			path := "/v1/jobs/" + id

			done := goWait(t, c, id)
			require.Eventually(t, func() bool { return len(s.received(http.MethodGet, path)) >= 2 && s.heldReads() == 1 },
				10*time.Second, 5*time.Millisecond)
			s.Jobs.Succeed(id, "ok")

			res := mustReceive(t, done, 5*time.Second)
			require.NoError(t, res.err)
			require.Equal(t, client.StateSucceeded, res.job.State)
			require.Equal(t, tc.wantPrefer, s.received(http.MethodGet, path)[0].header.Get("Prefer"))
		})
	}
}

func TestWaitContextEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		longPoll bool
		// timeout, when set, ends the context instead of a cancel.
		timeout time.Duration
		want    error
	}{
		{"canceled while a long-poll holds the request", true, 0, context.Canceled},
		{"canceled while sleeping Retry-After", false, 0, context.Canceled},
		{"deadline while sleeping Retry-After", false, 2 * time.Second, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Retry-After is 60: a job of 600 s.
			s := mustStartAPI(t, apiOptions{noLongPoll: !tc.longPoll})
			c := mustNew(t, s.URL())
			id := s.add(t, job.StateRunning, 600)

			ctx, cancel := context.WithCancel(t.Context())
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(t.Context(), tc.timeout)
			}
			t.Cleanup(cancel)
			done := make(chan waitResult, 1)
			go func() {
				j, err := c.Wait(ctx, id)
				done <- waitResult{j, err}
			}()
			require.Eventually(t, func() bool {
				if tc.longPoll {
					return s.heldReads() == 1
				}
				return len(s.received(http.MethodGet, "/v1/jobs/"+id)) == 1
			}, 5*time.Second, 5*time.Millisecond)
			if tc.timeout == 0 {
				cancel()
			}

			res := mustReceive(t, done, 5*time.Second)
			require.Nil(t, res.job)
			require.Equal(t, tc.want, res.err, "Wait must return ctx.Err() itself")
			require.Len(t, s.received(http.MethodGet, "/v1/jobs/"+id), 1)
		})
	}
}

func TestWaitRetriesUnavailableAndRateLimited(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{onStatusRead: func(jobs *httpapitest.Jobs, id string, n int) { jobs.Succeed(id, "ok") }})
	c := mustNew(t, s.URL())
	queued, err := c.Submit(t.Context(), client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 1}})
	require.NoError(t, err)
	s.failNext(http.StatusServiceUnavailable, http.StatusTooManyRequests) // each with Retry-After: 1

	j, err := c.Wait(t.Context(), queued.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, j.State)

	polls := s.received(http.MethodGet, "/v1/jobs/"+queued.ID)
	require.Len(t, polls, 3)
	for i := 1; i < len(polls); i++ {
		require.GreaterOrEqual(t, polls[i].at.Sub(polls[i-1].at), time.Second, "retry %d came before the Retry-After", i)
	}
}

func TestWaitReturnsOtherErrors(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())
	expired := s.add(t, job.StateSucceeded, 1)
	s.Jobs.Expire(expired)

	cases := []struct {
		name string
		id   string
		want error
	}{
		{"unknown job", "00000000-0000-4000-8000-999999999999", client.ErrNotFound},
		{"expired job", expired, client.ErrGone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Wait(t.Context(), tc.id)
			require.ErrorIs(t, err, tc.want)
			require.Len(t, s.received(http.MethodGet, "/v1/jobs/"+tc.id), 1, "not retried")
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		state     job.State // "" for no such job
		wantState client.State
		wantErr   error
	}{
		{"queued: 202 canceling", job.StateQueued, client.StateCanceling, nil},
		{"running: 202 canceling", job.StateRunning, client.StateCanceling, nil},
		{"canceling: 202 again", job.StateCanceling, client.StateCanceling, nil},
		{"canceled: 204, status read", job.StateCanceled, client.StateCanceled, nil},
		{"succeeded: 409", job.StateSucceeded, "", client.ErrConflict},
		{"failed: 409", job.StateFailed, "", client.ErrConflict},
		{"unknown: 404", "", "", client.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustStartAPI(t, apiOptions{})
			c := mustNew(t, s.URL())
			id := "00000000-0000-4000-8000-999999999999"
			if tc.state != "" {
				id = s.add(t, tc.state, 5)
			}

			j, err := c.Cancel(t.Context(), id)
			require.Len(t, s.received(http.MethodDelete, "/v1/jobs/"+id), 1)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, j)
				if tc.state != "" {
					p := mustProblem(t, err)
					require.Equal(t, id, p.JobID)
					require.Equal(t, client.State(tc.state), p.State)
					require.Equal(t, "/v1/jobs/"+id, p.StatusURL)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, id, j.ID)
			require.Equal(t, tc.wantState, j.State)
			reads := s.received(http.MethodGet, "/v1/jobs/"+id)
			if tc.wantState == client.StateCanceled {
				// 204 has no body: the status was read to fill the Job.
				require.Len(t, reads, 1)
				require.NotNil(t, j.CompletedAt)
				require.NotNil(t, j.Error)
			} else {
				require.Empty(t, reads)
				require.NotEmpty(t, j.ETag)
			}
		})
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	csv := "id,state\n1,succeeded\n2,failed\n"
	cases := []struct {
		name          string
		contentType   string
		body          string
		filename      string
		streamResults bool
		wantLength    int64
	}{
		{"file with its length", "text/csv", csv, "jobs.csv", false, int64(len(csv))},
		{"streamed without a length", "text/csv", csv, "jobs.csv", true, -1},
		{"non-ASCII file name", "text/csv", csv, "résumé.csv", false, int64(len(csv))},
		{"inline JSON", "application/json", `{"slept":5}`, "", false, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := mustStartAPI(t, apiOptions{streamResults: tc.streamResults})
			id := s.add(t, job.StateRunning, 1)
			s.Jobs.SucceedWith(id, []byte(tc.body), tc.contentType, tc.filename)

			res, err := mustNew(t, s.URL()).Result(t.Context(), id)
			require.NoError(t, err)
			t.Cleanup(func() { _ = res.Body.Close() })
			require.Equal(t, tc.contentType, res.ContentType)
			require.Equal(t, tc.wantLength, res.ContentLength)
			require.Equal(t, tc.filename, res.Filename)
			data, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, tc.body, string(data))
			require.NoError(t, res.Body.Close())
		})
	}
}

func TestResultErrors(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())
	running := s.add(t, job.StateRunning, 5)
	failed := s.add(t, job.StateFailed, 5)
	expired := s.add(t, job.StateSucceeded, 5)
	s.Jobs.Expire(expired)

	cases := []struct {
		name      string
		id        string
		want      error
		wantState client.State
	}{
		{"running", running, client.ErrConflict, client.StateRunning},
		{"failed", failed, client.ErrConflict, client.StateFailed},
		{"expired", expired, client.ErrGone, ""},
		{"unknown", "00000000-0000-4000-8000-999999999999", client.ErrNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := c.Result(t.Context(), tc.id)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, res)
			p := mustProblem(t, err)
			require.Equal(t, tc.wantState, p.State)
			switch tc.wantState {
			case client.StateRunning:
				require.Equal(t, "/v1/jobs/"+running, p.StatusURL)
				require.Nil(t, p.JobError)
			case client.StateFailed:
				require.NotNil(t, p.JobError)
				require.Contains(t, p.JobError.Title, "doomed")
				require.Zero(t, p.JobError.Status)
				require.NotErrorIs(t, p.JobError, client.ErrConflict)
			}
		})
	}
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	s := mustStartAPI(t, apiOptions{})
	c := mustNew(t, s.URL())
	t.Run("JSON result", func(t *testing.T) {
		t.Parallel()
		id := s.add(t, job.StateRunning, 1)
		s.Jobs.SucceedWith(id, []byte(`{"slept":5}`), "application/json; charset=utf-8", "")
		var out struct{ Slept int }
		require.NoError(t, c.ResultJSON(t.Context(), id, &out))
		require.Equal(t, 5, out.Slept)
	})
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		id := s.add(t, job.StateRunning, 1)
		s.Jobs.SucceedWith(id, []byte("a,b\n"), "text/csv", "jobs.csv")
		var out any
		err := c.ResultJSON(t.Context(), id, &out)
		require.ErrorContains(t, err, "not JSON")
	})
	t.Run("not succeeded", func(t *testing.T) {
		t.Parallel()
		var out any
		err := c.ResultJSON(t.Context(), s.add(t, job.StateRunning, 1), &out)
		require.ErrorIs(t, err, client.ErrConflict)
	})
}

func TestGetSeeOther(t *testing.T) {
	t.Parallel()
	// Servers that redirect even with ?redirect=false.
	cases := []struct {
		name string
		body string
	}{
		{"with the status body", `{"id":"j1","kind":"sleep","state":"succeeded","resultUrl":"/v1/jobs/j1/result","attempt":1}`},
		{"without a body", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/v1/jobs/j1/result")
				w.Header().Set("ETag", `"v9"`)
				if tc.body != "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(http.StatusSeeOther)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)

			j, err := mustNew(t, srv.URL).Get(t.Context(), "j1")
			require.NoError(t, err)
			require.Equal(t, "j1", j.ID)
			require.Equal(t, client.StateSucceeded, j.State)
			require.Equal(t, "/v1/jobs/j1/result", j.ResultURL)
			require.Equal(t, `"v9"`, j.ETag)
		})
	}
}

func TestProblemAnswers(t *testing.T) {
	t.Parallel()
	sentinels := []error{client.ErrNotFound, client.ErrGone, client.ErrConflict, client.ErrRateLimited, client.ErrUnavailable, client.ErrInvalid}
	cases := []struct {
		status int
		want   error // nil: no sentinel matches
	}{
		{http.StatusBadRequest, client.ErrInvalid},
		{http.StatusUnauthorized, nil},
		{http.StatusNotFound, client.ErrNotFound},
		{http.StatusMethodNotAllowed, nil},
		{http.StatusConflict, client.ErrConflict},
		{http.StatusGone, client.ErrGone},
		{http.StatusRequestEntityTooLarge, nil},
		{http.StatusUnprocessableEntity, client.ErrInvalid},
		{http.StatusTooManyRequests, client.ErrRateLimited},
		{http.StatusInternalServerError, nil},
		{http.StatusServiceUnavailable, client.ErrUnavailable},
	}
	// The server answers GET /v1/jobs/{status} with that status and a problem
	// holding every member the contract defines.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/v1/jobs/"))
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{
			"type": "https://jobgate.dev/problems/example", "title": "Example problem", "status": `+strconv.Itoa(status)+`,
			"detail": "What went wrong.", "instance": "`+r.URL.Path+`", "requestId": "r-1",
			"errors": [{"field": "/input/seconds", "message": "must be at most 86400"}],
			"jobId": "j-1", "state": "failed", "statusUrl": "/v1/jobs/j-1",
			"error": {"type": "https://jobgate.dev/problems/job-failed", "title": "The job failed (timeout)", "detail": "took too long"},
			"someFutureMember": true}`)
	}))
	t.Cleanup(srv.Close)
	c := mustNew(t, srv.URL)

	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			_, err := c.Get(t.Context(), strconv.Itoa(tc.status))
			p := mustProblem(t, err)
			require.Equal(t, &client.Problem{
				Type:       "https://jobgate.dev/problems/example",
				Title:      "Example problem",
				Status:     tc.status,
				Detail:     "What went wrong.",
				Instance:   "/v1/jobs/" + strconv.Itoa(tc.status),
				Errors:     []client.FieldError{{Field: "/input/seconds", Message: "must be at most 86400"}},
				JobID:      "j-1",
				State:      client.StateFailed,
				StatusURL:  "/v1/jobs/j-1",
				RequestID:  "r-1",
				JobError:   &client.Problem{Type: "https://jobgate.dev/problems/job-failed", Title: "The job failed (timeout)", Detail: "took too long"},
				RetryAfter: 7 * time.Second,
			}, p)
			for _, s := range sentinels {
				require.Equal(t, s == tc.want, errors.Is(err, s), "errors.Is(%d problem, %v)", tc.status, s)
			}
			require.Equal(t, "jobgate: "+strconv.Itoa(tc.status)+" Example problem: What went wrong. (/input/seconds: must be at most 86400) [request r-1]", err.Error())
		})
	}
}

func TestNonProblemAnswer(t *testing.T) {
	t.Parallel()
	// A proxy in front of jobgate answers with its own page.
	retryAt := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("X-Request-Id", "proxy-9")
		w.Header().Set("Retry-After", retryAt)
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
	}))
	t.Cleanup(srv.Close)

	_, err := mustNew(t, srv.URL).Cancel(t.Context(), "j-1")
	p := mustProblem(t, err)
	require.Equal(t, http.StatusBadGateway, p.Status)
	require.Equal(t, "Bad Gateway", p.Title)
	require.Equal(t, "proxy-9", p.RequestID)
	require.Empty(t, p.Type)
	require.InDelta(t, 90*time.Second, p.RetryAfter, float64(3*time.Second))
	require.NotErrorIs(t, err, client.ErrUnavailable)
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1; a port just freed could be taken by a
	// parallel test before the client dials it.
	_, err := mustNew(t, "http://127.0.0.1:1").Get(t.Context(), "j-1")
	require.Error(t, err)
	require.NotErrorAs(t, err, new(*client.Problem))
}

// waitResult is what Wait returned.
type waitResult struct {
	job *client.Job
	err error
}

// goWait runs c.Wait(id) in a goroutine and delivers its result.
func goWait(tb testing.TB, c *client.Client, id string) <-chan waitResult {
	tb.Helper()
	done := make(chan waitResult, 1)
	go func() {
		j, err := c.Wait(tb.Context(), id)
		done <- waitResult{j, err}
	}()
	return done
}

// mustReceive returns the value ch delivers within d, or fails the test.
func mustReceive[T any](tb testing.TB, ch <-chan T, d time.Duration) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		tb.Fatalf("nothing received within %s", d)
		panic("unreachable")
	}
}

// mustNew returns a Client of baseURL.
func mustNew(tb testing.TB, baseURL string, opts ...client.Option) *client.Client {
	tb.Helper()
	c, err := client.New(baseURL, opts...)
	require.NoError(tb, err)
	return c
}

// mustProblem returns err as a *client.Problem.
func mustProblem(tb testing.TB, err error) *client.Problem {
	tb.Helper()
	require.Error(tb, err)
	var p *client.Problem
	require.ErrorAs(tb, err, &p)
	return p
}
