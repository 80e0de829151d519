package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// http.request retries 5xx and 429 with backoff, then returns the response
// as the result.
func TestHTTPRequestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var lastBody atomic.Value
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		lastBody.Store(string(b) + " " + r.Method + " " + r.Header.Get("X-Order") + " " + r.Header.Get("Content-Type"))
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Answer", "42")
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true})

	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{
		"method": "POST", "url": target.URL + "/orders", "headers": map[string]string{"X-Order": "7"}, "body": map[string]any{"item": "book"},
	}}))
	done := e.waitState(id, job.StateSucceeded, 30*time.Second).JSON(t)
	require.EqualValues(t, 3, calls.Load())
	require.EqualValues(t, 3, done["attempt"], "the third attempt succeeded")
	require.Equal(t, `{"item":"book"} POST 7 application/json`, lastBody.Load())

	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, result.StatusCode)
	var out struct {
		Status  int                 `json:"status"`
		Headers map[string][]string `json:"headers"`
		Body    json.RawMessage     `json:"body"`
	}
	require.NoError(t, json.Unmarshal(result.Body, &out))
	require.Equal(t, 200, out.Status)
	require.Equal(t, []string{"42"}, out.Headers["X-Answer"])
	require.JSONEq(t, `{"ok":true}`, string(out.Body))
}

// A 4xx answer is not retried: it is the job's result.
func TestHTTPRequestClientErrorIsTheResult(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no such order", http.StatusNotFound)
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": target.URL}}))
	e.waitState(id, job.StateSucceeded, 15*time.Second)
	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").JSON(t)
	require.EqualValues(t, 404, result["status"])
	require.Equal(t, "no such order\n", result["body"])
	require.EqualValues(t, 1, calls.Load())
}

// Retries end: a target that keeps failing fails the job after maxAttempts,
// with the last error in the job's error.
func TestHTTPRequestGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": target.URL, "maxAttempts": 2}}))
	failed := e.waitState(id, job.StateFailed, 20*time.Second).JSON(t)
	require.EqualValues(t, 2, calls.Load())
	problem := failed["error"].(map[string]any)
	require.Equal(t, "https://jobgate.dev/problems/job-failed", problem["type"])
	require.Contains(t, problem["detail"], "502 Bad Gateway")
	p := requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusConflict, "job-not-succeeded")
	require.Equal(t, "failed", p["state"])
}

// Loopback destinations are refused when private targets are not allowed,
// at connect time, and the refusal is not retried.
func TestHTTPRequestRefusesLoopback(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: false})
	// "localhost" resolves to loopback: the check is on the resolved address.
	url := "http://localhost:" + target.URL[len("http://127.0.0.1:"):]
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": url}}))
	failed := e.waitState(id, job.StateFailed, 15*time.Second).JSON(t)
	require.Zero(t, calls.Load())
	require.EqualValues(t, 1, failed["attempt"])
	problem := failed["error"].(map[string]any)
	require.Contains(t, problem["title"], "destination-refused")
	require.Contains(t, problem["detail"], "not a public address")
}

// A mid-sized inline result (kept out of the finished-job cache for its
// size) reads the same every time.
func TestMidSizedResultReadsTheSameEachTime(t *testing.T) {
	t.Parallel()
	big := `{"data":"` + strings.Repeat("x", 100<<10) + `"}`
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": jsonServer(t, big)}}))
	e.waitState(id, job.StateSucceeded, 15*time.Second)
	first := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	second := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, first.StatusCode)
	require.Equal(t, first.Body, second.Body)
	var out struct{ Body json.RawMessage }
	require.NoError(t, json.Unmarshal(second.Body, &out))
	require.JSONEq(t, big, string(out.Body))
}

// jsonServer serves body as JSON to every request until the test ends, and
// returns its URL.
func jsonServer(t *testing.T, body string) string {
	t.Helper()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(target.Close)
	return target.URL
}
