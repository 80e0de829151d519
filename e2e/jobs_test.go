package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/jobgate/jobgate/job"
)

// A job goes from 202 through running with progress to a 303 and its
// result, and every answer carries the headers the contract promises.
func TestSubmitPollResult(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})

	id, accepted := e.submit(`{"kind":"sleep","input":{"seconds":3}}`)
	require.Equal(t, "/v1/jobs/"+id, accepted.Header.Get("Location"))
	require.Equal(t, "no-store", accepted.Header.Get("Cache-Control"))
	require.Equal(t, "3", accepted.Header.Get("Retry-After"))
	require.Empty(t, accepted.Header.Get("Idempotent-Replayed"))
	body := accepted.JSON(t)
	require.Equal(t, "queued", body["state"])
	require.Equal(t, "sleep", body["kind"])
	require.Equal(t, "/v1/jobs/"+id, body["statusUrl"])
	require.NotEmpty(t, body["createdAt"])
	require.NotEmpty(t, body["estimatedCompletion"])
	require.Len(t, id, 36, "a UUID")

	// Readable the moment the 202 is sent.
	first := e.do(http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusOK, first.StatusCode, "body: %s", first.Body)
	require.NotEmpty(t, first.Header.Get("Retry-After"))

	// Running, with progress from the activity's heartbeats.
	var running map[string]any
	eventually(t, 10*time.Second, "running with progress", func() bool {
		r := e.do(http.MethodGet, "/v1/jobs/"+id, "")
		running = r.JSON(t)
		p, _ := running["progress"].(map[string]any)
		return running["state"] == "running" && p != nil && p["current"].(float64) >= 1
	})
	p := running["progress"].(map[string]any)
	require.EqualValues(t, 3, p["total"])
	require.NotNil(t, p["percent"])
	require.Contains(t, p["message"], "of 3 seconds")
	require.NotNil(t, running["startedAt"])
	require.EqualValues(t, 1, running["attempt"])

	// Succeeded: 303 to the result, with the status body.
	var done response
	eventually(t, 15*time.Second, "303 once succeeded", func() bool {
		done = e.do(http.MethodGet, "/v1/jobs/"+id, "")
		return done.StatusCode == http.StatusSeeOther
	})
	require.Equal(t, "/v1/jobs/"+id+"/result", done.Header.Get("Location"))
	require.NotEmpty(t, done.Header.Get("Expires"))
	require.Empty(t, done.Header.Get("Retry-After"))
	status := done.JSON(t)
	require.Equal(t, "succeeded", status["state"])
	require.Equal(t, "/v1/jobs/"+id+"/result", status["resultUrl"])
	require.NotNil(t, status["completedAt"])
	require.EqualValues(t, 100, status["progress"].(map[string]any)["percent"])

	noRedirect := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
	require.Equal(t, http.StatusOK, noRedirect.StatusCode)
	require.Equal(t, "succeeded", noRedirect.JSON(t)["state"])

	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, result.StatusCode)
	require.Equal(t, "application/json", result.Header.Get("Content-Type"))
	require.JSONEq(t, `{"slept":3}`, string(result.Body))

	// Finished work cannot be canceled.
	p409 := requireProblem(t, e.do(http.MethodDelete, "/v1/jobs/"+id, ""), http.StatusConflict, "job-finished")
	require.Equal(t, "succeeded", p409["state"])
}

// The result of an unfinished job is a 409 pointing at its status, never a
// 404.
func TestResultBeforeFinishedIs409(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":30}}`)
	p := requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusConflict, "job-not-succeeded")
	require.Equal(t, id, p["jobId"])
	require.Equal(t, "/v1/jobs/"+id, p["statusUrl"])
	require.Contains(t, []any{"queued", "running"}, p["state"])
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
	e.waitState(id, job.StateCanceled, workerRoundTrip)
}

// DELETE reaches the running sleep activity through its heartbeats: the
// activity acknowledges the cancellation, the job ends canceled and is not
// retried, and a second DELETE is a 204.
func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
	e.waitState(id, job.StateRunning, workerRoundTrip)

	deleted := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, deleted.StatusCode, "body: %s", deleted.Body)
	require.Equal(t, "/v1/jobs/"+id, deleted.Header.Get("Location"))
	require.Contains(t, []any{"canceling", "canceled"}, deleted.JSON(t)["state"])

	start := time.Now()
	canceled := e.waitState(id, job.StateCanceled, workerRoundTrip)
	t.Logf("DELETE to canceled: %s", time.Since(start))
	body := canceled.JSON(t)
	problem := body["error"].(map[string]any)
	require.Equal(t, "https://jobgate.dev/problems/job-canceled", problem["type"])
	require.NotNil(t, body["completedAt"])

	// The activity itself observed the cancellation (it returned canceled;
	// it was not abandoned) and ran exactly one attempt.
	var activityCanceled, attempts int
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			activityCanceled++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			attempts = int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())
		}
	}
	require.Equal(t, 1, activityCanceled, "the activity acknowledged the cancellation")
	require.Equal(t, 1, attempts)

	again := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusNoContent, again.StatusCode)
	require.Empty(t, again.Body)

	p := requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusConflict, "job-not-succeeded")
	require.Equal(t, "canceled", p["state"])
	require.NotNil(t, p["error"])
}

// Status comes from Temporal's record, so it answers with no worker at all;
// a job canceled while queued is canceling until a worker sees it.
func TestStatusWithoutWorker(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)

	got := e.do(http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusOK, got.StatusCode, "body: %s", got.Body)
	body := got.JSON(t)
	require.Equal(t, "queued", body["state"])
	require.Equal(t, "sleep", body["kind"])
	require.Nil(t, body["startedAt"])

	requireProblem(t, e.do(http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, "not-ready")

	deleted := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, deleted.StatusCode, "body: %s", deleted.Body)
	require.Equal(t, "canceling", deleted.JSON(t)["state"])
	require.Equal(t, "canceling", e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)["state"])
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode, "canceling again is 202")
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", "").StatusCode)
	eventually(t, 10*time.Second, "ready once the worker polls", func() bool {
		return e.do(http.MethodGet, "/readyz", "").StatusCode == http.StatusOK
	})
}

// A finished job past the result TTL answers 410 on status and result.
func TestExpiredJobIsGone(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{resultTTL: 8 * time.Second})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
	eventually(t, 30*time.Second, "410 after the TTL", func() bool {
		return e.do(http.MethodGet, "/v1/jobs/"+id, "").StatusCode == http.StatusGone
	})
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id, ""), http.StatusGone, "expired")
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusGone, "expired")
}

// Bad input gets the right problem and creates no workflow.
func TestBadInputCreatesNothing(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{maxBody: 1024})
	big := `{"kind":"sleep","input":{"seconds":1,"pad":"` + strings.Repeat("x", 2048) + `"}}`
	cases := []struct {
		name    string
		method  string
		path    string
		body    string
		header  []string
		status  int
		problem string
	}{
		{"malformed JSON", "POST", "/v1/jobs", `{"kind":"sleep",`, nil, 400, "malformed-json"},
		{"not an object", "POST", "/v1/jobs", `[1,2]`, nil, 400, "malformed-json"},
		{"trailing data", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}} {}`, nil, 400, "malformed-json"},
		{"unknown field", "POST", "/v1/jobs", `{"kind":"sleep","inputs":{}}`, nil, 400, "malformed-json"},
		{"empty body", "POST", "/v1/jobs", ``, nil, 400, "malformed-json"},
		{"unknown kind", "POST", "/v1/jobs", `{"kind":"mine.bitcoin","input":{}}`, nil, 422, "unknown-kind"},
		{"missing kind", "POST", "/v1/jobs", `{"input":{}}`, nil, 422, "invalid-input"},
		{"input out of range", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":-1}}`, nil, 422, "invalid-input"},
		{"input missing required field", "POST", "/v1/jobs", `{"kind":"sleep","input":{}}`, nil, 422, "invalid-input"},
		{"input wrong type", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":"ten"}}`, nil, 422, "invalid-input"},
		{"input unknown field", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1,"minutes":2}}`, nil, 422, "invalid-input"},
		{"bad URL", "POST", "/v1/jobs", `{"kind":"http.request","input":{"url":"ftp://x"}}`, nil, 422, "invalid-input"},
		{"oversized body", "POST", "/v1/jobs", big, nil, 413, "body-too-large"},
		{"not JSON", "POST", "/v1/jobs", `kind=sleep`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"},
		{"key with space", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, []string{"Idempotency-Key", "a b"}, 400, "idempotency-key-invalid"},
		{"key too long", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "idempotency-key-invalid"},
		{"empty key", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, []string{"Idempotency-Key", `""`}, 400, "idempotency-key-invalid"},
		{"wrong method", "PUT", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, nil, 405, "method-not-allowed"},
		{"unknown id", "GET", "/v1/jobs/7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11", "", nil, 404, "not-found"},
		{"id not a UUID", "GET", "/v1/jobs/temporal-sys-history-scanner", "", nil, 404, "not-found"},
		{"cancel unknown id", "DELETE", "/v1/jobs/7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11", "", nil, 404, "not-found"},
		{"result of unknown id", "GET", "/v1/jobs/7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11/result", "", nil, 404, "not-found"},
		{"bad redirect parameter", "GET", "/v1/jobs/7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11?redirect=maybe", "", nil, 400, "invalid-query"},
		{"no such endpoint", "GET", "/v2/jobs", "", nil, 404, "no-such-endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.method, tc.path, tc.body, tc.header...)
			p := requireProblem(t, resp, tc.status, tc.problem)
			require.Equal(t, strings.SplitN(tc.path, "?", 2)[0]+"#request-"+resp.Header.Get("X-Request-Id"), p["instance"])
			require.Equal(t, resp.Header.Get("X-Request-Id"), p["requestId"])
			if tc.status == 422 && tc.problem != "idempotency-key-reused" {
				require.NotEmpty(t, p["errors"], "field errors: %s", resp.Body)
			}
			if tc.status == 405 {
				require.Equal(t, "GET, HEAD, POST", resp.Header.Get("Allow"))
			}
		})
	}
	e.requireSettledCount(`TaskQueue = '`+e.TaskQueue+`'`, 0, "no bad request became a workflow")
}

// A job canceled while queued ends canceled without its work ever being
// scheduled, once a worker comes.
func TestCancelWhileQueuedNeverStarts(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)

	e.startWorker()

	e.waitState(id, job.StateCanceled, workerRoundTrip)
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		require.NotEqual(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, ev.GetEventType(), "the work was never scheduled")
	}
}

// Operators' actions in the Temporal UI or CLI show in jobgate: a
// cancellation and a termination both read as canceled.
func TestOperatorCancelAndTerminateShowAsCanceled(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	canceled, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
	terminated, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
	e.waitState(canceled, job.StateRunning, workerRoundTrip)
	e.waitState(terminated, job.StateRunning, workerRoundTrip)

	require.NoError(t, e.Temporal.CancelWorkflow(context.Background(), canceled, ""))
	require.NoError(t, e.Temporal.TerminateWorkflow(context.Background(), terminated, "", "stuck, says the on-call"))

	e.waitState(canceled, job.StateCanceled, workerRoundTrip)
	body := e.waitState(terminated, job.StateCanceled, workerRoundTrip).JSON(t)
	require.Contains(t, body["error"].(map[string]any)["detail"], "terminated by an operator: stuck, says the on-call")
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/v1/jobs/"+terminated, "").StatusCode)
}
