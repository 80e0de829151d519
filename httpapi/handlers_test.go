package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
	"github.com/jobgate/jobgate/job"
)

// These tests hold the HTTP layer to the contract over an in-memory job
// service (httpapitest): no Temporal, so they run in milliseconds. What
// Temporal records is for e2e.

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(a.body, &m), "body: %s", a.body)
	return m
}

// call sends one request to srv; headers are name, value pairs.
func call(tb testing.TB, srv *httpapitest.Server, method, path, body string, headers ...string) answer {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(tb, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return answer{code: resp.StatusCode, header: resp.Header, body: b}
}

// requireProblem checks that a is a problem of the named type and status,
// for the request's path, with the request id of the answer.
func requireProblem(tb testing.TB, a answer, status int, name string) map[string]any {
	tb.Helper()
	require.Equal(tb, status, a.code, "body: %s", a.body)
	require.Equal(tb, "application/problem+json", a.header.Get("Content-Type"))
	require.Equal(tb, "no-store", a.header.Get("Cache-Control"))
	p := a.json(tb)
	require.Equal(tb, httpapi.ProblemBase+name, p["type"])
	require.EqualValues(tb, status, p["status"])
	require.NotEmpty(tb, p["title"])
	require.Equal(tb, a.header.Get("X-Request-Id"), p["requestId"])
	require.Contains(tb, p["instance"], "#request-"+a.header.Get("X-Request-Id"))
	return p
}

const sleepJob = `{"kind":"sleep","input":{"seconds":5}}`

// mustSubmit submits a sleep job and returns its id.
func mustSubmit(tb testing.TB, srv *httpapitest.Server, headers ...string) string {
	tb.Helper()
	a := call(tb, srv, http.MethodPost, "/v1/jobs", sleepJob, headers...)
	require.Equal(tb, http.StatusAccepted, a.code, "body: %s", a.body)
	return a.json(tb)["id"].(string)
}

// Every error of the job service becomes the problem the contract names,
// in the one place errors become HTTP; an unknown error is a 500 that
// tells nothing of its cause.
func TestErrorsBecomeProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		method     string // Submit, Get, OpenResult, Cancel, List
		err        error
		status     int
		problem    string
		retryAfter string
		check      func(t *testing.T, a answer, p map[string]any)
	}{
		{name: "not found", method: "Get", err: job.ErrNotFound, status: 404, problem: "not-found"},
		{name: "expired", method: "Get", err: job.ErrExpired, status: 410, problem: "expired"},
		{name: "expired key", method: "Submit", err: job.ErrExpired, status: 410, problem: "expired",
			check: func(t *testing.T, _ answer, p map[string]any) { require.Contains(t, p["title"], "Idempotency-Key") }},
		{name: "unavailable", method: "Get", err: job.ErrUnavailable, status: 503, problem: "unavailable", retryAfter: "5"},
		{name: "unavailable wrapped", method: "Cancel", err: errors.Join(errors.New("dial tcp: refused"), job.ErrUnavailable), status: 503, problem: "unavailable", retryAfter: "5"},
		{name: "overloaded", method: "Submit", err: job.ErrOverloaded, status: 503, problem: "overloaded", retryAfter: "10"},
		{name: "quota", method: "Submit", err: &job.QuotaError{Active: 7, Limit: 7}, status: 429, problem: "too-many-active-jobs", retryAfter: "5",
			check: func(t *testing.T, a answer, _ map[string]any) {
				require.Equal(t, `"active-jobs";q=7`, a.header.Get("RateLimit-Policy"))
			}},
		{name: "blob quota", method: "Submit", err: &job.BlobQuotaError{Used: 2048, Limit: 1024}, status: 429, problem: "blob-quota-exceeded", retryAfter: "60",
			check: func(t *testing.T, a answer, p map[string]any) {
				require.Equal(t, `"blob-bytes";q=1024`, a.header.Get("RateLimit-Policy"))
				require.Contains(t, p["detail"], "2048 bytes of its 1024-byte")
			}},
		{name: "unknown kind", method: "Submit", err: &job.UnknownKindError{Kind: "nap", Known: []string{"sleep"}}, status: 422, problem: "unknown-kind",
			check: func(t *testing.T, _ answer, p map[string]any) {
				require.Equal(t, "/kind", p["errors"].([]any)[0].(map[string]any)["field"])
			}},
		{name: "invalid input", method: "Submit", err: &job.ValidationError{Kind: "sleep", Fields: []job.FieldError{{Field: "/input/seconds", Message: "must be at most 86400"}}}, status: 422, problem: "invalid-input",
			check: func(t *testing.T, _ answer, p map[string]any) {
				require.Equal(t, []any{map[string]any{"field": "/input/seconds", "message": "must be at most 86400"}}, p["errors"])
			}},
		{name: "key reused", method: "Submit", err: job.ErrKeyReused, status: 422, problem: "idempotency-key-reused"},
		{name: "bad cursor", method: "List", err: &job.InvalidCursorError{Reason: "it belongs to other filters"}, status: 400, problem: "invalid-cursor"},
		{name: "not finished", method: "OpenResult", err: &job.NotFinishedError{Job: &job.Job{ID: "j1", State: job.StateRunning}}, status: 409, problem: "job-not-succeeded",
			check: func(t *testing.T, _ answer, p map[string]any) {
				require.Equal(t, "j1", p["jobId"])
				require.Equal(t, "running", p["state"])
				require.Equal(t, "/v1/jobs/j1", p["statusUrl"])
			}},
		{name: "failed, no result", method: "OpenResult", err: &job.NotFinishedError{Job: &job.Job{ID: "j1", State: job.StateFailed, Error: &job.Failure{Type: "http-502", Message: "bad gateway"}}}, status: 409, problem: "job-not-succeeded",
			check: func(t *testing.T, _ answer, p map[string]any) {
				e := p["error"].(map[string]any)
				require.Equal(t, httpapi.ProblemBase+"job-failed", e["type"])
				require.Contains(t, e["title"], "http-502")
				require.Equal(t, "bad gateway", e["detail"])
			}},
		{name: "finished", method: "Cancel", err: &job.FinishedError{Job: &job.Job{ID: "j1", State: job.StateSucceeded}}, status: 409, problem: "job-finished",
			check: func(t *testing.T, _ answer, p map[string]any) { require.Equal(t, "succeeded", p["state"]) }},
		{name: "unknown error", method: "Get", err: errors.New("secret internals: table jobs is corrupt"), status: 500, problem: "internal",
			check: func(t *testing.T, a answer, _ map[string]any) {
				require.NotContains(t, string(a.body), "secret internals")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httpapitest.NewServer(t, httpapi.Config{})
			id := mustSubmit(t, srv)
			srv.Jobs.FailNext(tc.method, tc.err)
			var a answer
			switch tc.method {
			case "Submit":
				a = call(t, srv, http.MethodPost, "/v1/jobs", sleepJob)
			case "Get":
				a = call(t, srv, http.MethodGet, "/v1/jobs/"+id, "")
			case "OpenResult":
				a = call(t, srv, http.MethodGet, "/v1/jobs/"+id+"/result", "")
			case "Cancel":
				a = call(t, srv, http.MethodDelete, "/v1/jobs/"+id, "")
			case "List":
				a = call(t, srv, http.MethodGet, "/v1/jobs?cursor=abc", "")
			}
			p := requireProblem(t, a, tc.status, tc.problem)
			require.Equal(t, tc.retryAfter, a.header.Get("Retry-After"))
			if tc.check != nil {
				tc.check(t, a, p)
			}
		})
	}
}

// Requests the HTTP layer refuses itself, before the job service.
func TestRequestsRefusedBeforeTheService(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{MaxBodyBytes: 64})
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		problem                  string
	}{
		{"malformed json", "POST", "/v1/jobs", `{"kind":`, nil, 400, "malformed-json"},
		{"unknown member", "POST", "/v1/jobs", `{"kind":"sleep","input":{},"extra":1}`, nil, 400, "malformed-json"},
		{"no kind", "POST", "/v1/jobs", `{"input":{"seconds":1}}`, nil, 422, "invalid-input"},
		{"unknown kind", "POST", "/v1/jobs", `{"kind":"nap","input":{}}`, nil, 422, "unknown-kind"},
		{"input fails the schema", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":-1}}`, nil, 422, "invalid-input"},
		{"bad key", "POST", "/v1/jobs", sleepJob, []string{"Idempotency-Key", "a b"}, 400, "idempotency-key-invalid"},
		{"too large", "POST", "/v1/jobs", `{"kind":"sleep","input":{"seconds":1},"callbackUrl":"https://example.com/` + strings.Repeat("x", 64) + `"}`, nil, 413, "body-too-large"},
		{"bad redirect", "GET", "/v1/jobs/x?redirect=maybe", "", nil, 400, "invalid-query"},
		{"bad state", "GET", "/v1/jobs?state=sleeping", "", nil, 400, "invalid-query"},
		{"bad limit", "GET", "/v1/jobs?limit=1000", "", nil, 400, "invalid-query"},
		{"no such endpoint", "GET", "/v1/nothing", "", nil, 404, "no-such-endpoint"},
		{"wrong method", "PUT", "/v1/jobs", "", nil, 405, "method-not-allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := call(t, srv, tc.method, tc.path, tc.body, tc.headers...)
			requireProblem(t, a, tc.status, tc.problem)
			if tc.status == 405 {
				require.Contains(t, a.header.Get("Allow"), "POST")
			}
		})
	}
	require.Empty(t, srv.Jobs.IDs(), "no refused request became a job")
}

// An unknown member of a body is named, with the members that body
// accepts.
func TestUnknownMemberNamesTheAcceptedOnes(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	a := call(t, srv, http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{},"delay":5}`)
	p := requireProblem(t, a, http.StatusBadRequest, "malformed-json")
	require.Equal(t, `Unknown field "delay"; the body accepts kind, input, callbackUrl, runAt, delaySeconds and priority.`, p["detail"])
	require.Empty(t, srv.Jobs.IDs())
}

// POST answers 202 with the monitors and Retry-After; a replayed key the
// same job, marked; the key with another request 422.
func TestSubmitAndReplay(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	a := call(t, srv, http.MethodPost, "/v1/jobs", sleepJob, "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, a.code)
	id := a.json(t)["id"].(string)
	require.Equal(t, "/v1/jobs/"+id, a.header.Get("Location"))
	require.Equal(t, srv.URL+"/v1/operations/"+id, a.header.Get("Operation-Location"))
	require.Equal(t, "5", a.header.Get("Retry-After"))
	require.Equal(t, "no-store", a.header.Get("Cache-Control"))
	require.NotEmpty(t, a.header.Get("ETag"))
	require.Empty(t, a.header.Get("Idempotent-Replayed"))
	require.Equal(t, "queued", a.json(t)["state"])

	again := call(t, srv, http.MethodPost, "/v1/jobs", sleepJob, "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, again.code)
	require.Equal(t, "true", again.header.Get("Idempotent-Replayed"))
	require.Equal(t, a.header.Get("Location"), again.header.Get("Location"))

	other := call(t, srv, http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":6}}`, "Idempotency-Key", "order-1")
	requireProblem(t, other, http.StatusUnprocessableEntity, "idempotency-key-reused")
	require.Len(t, srv.Jobs.IDs(), 1)
}

// The status: 200 with Retry-After while it runs, 304 for its ETag, 303
// to the result once it succeeded (200 with ?redirect=false), 200 for a
// failed job.
func TestStatusAnswers(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	id := mustSubmit(t, srv)
	srv.Jobs.Start(id)
	srv.Jobs.Report(id, job.Progress{Current: 2, Total: 5, Message: "slept 2 of 5 seconds"})

	a := call(t, srv, http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusOK, a.code)
	require.NotEmpty(t, a.header.Get("Retry-After"))
	require.Empty(t, a.header.Get("Expires"))
	body := a.json(t)
	require.Equal(t, "running", body["state"])
	require.EqualValues(t, 40, body["progress"].(map[string]any)["percent"])
	tag := a.header.Get("ETag")

	notModified := call(t, srv, http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", tag)
	require.Equal(t, http.StatusNotModified, notModified.code)
	require.Empty(t, notModified.body)
	require.Equal(t, tag, notModified.header.Get("ETag"))

	srv.Jobs.Succeed(id, map[string]int{"slept": 5})
	changed := call(t, srv, http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", tag)
	require.Equal(t, http.StatusSeeOther, changed.code, "the old ETag no longer matches")
	require.Equal(t, "/v1/jobs/"+id+"/result", changed.header.Get("Location"))
	require.NotEmpty(t, changed.header.Get("Expires"))
	require.Empty(t, changed.header.Get("Retry-After"))
	require.Equal(t, "succeeded", changed.json(t)["state"])

	plain := call(t, srv, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
	require.Equal(t, http.StatusOK, plain.code)

	res := call(t, srv, http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, res.code)
	require.JSONEq(t, `{"slept":5}`, string(res.body))
	require.Equal(t, "application/json", res.header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(res.header.Get("ETag"), `"`), "a strong ETag")
	ranged := call(t, srv, http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=0-3")
	require.Equal(t, http.StatusPartialContent, ranged.code)
	require.Equal(t, `{"sl`, string(ranged.body))
	requireProblem(t, call(t, srv, http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=100-200"), http.StatusRequestedRangeNotSatisfiable, "range-not-satisfiable")

	failed := mustSubmit(t, srv)
	srv.Jobs.Fail(failed, "http-502", "the destination answered 502")
	f := call(t, srv, http.MethodGet, "/v1/jobs/"+failed, "")
	require.Equal(t, http.StatusOK, f.code)
	require.Equal(t, httpapi.ProblemBase+"job-failed", f.json(t)["error"].(map[string]any)["type"])
	requireProblem(t, call(t, srv, http.MethodGet, "/v1/jobs/"+failed+"/result", ""), http.StatusConflict, "job-not-succeeded")
}

// DELETE: 202 while the cancellation takes effect (again while canceling),
// 204 once canceled, 409 for a job that succeeded.
func TestCancelAnswers(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	id := mustSubmit(t, srv)
	srv.Jobs.Start(id)
	for range 2 {
		a := call(t, srv, http.MethodDelete, "/v1/jobs/"+id, "")
		require.Equal(t, http.StatusAccepted, a.code)
		require.Equal(t, "/v1/jobs/"+id, a.header.Get("Location"))
		require.Equal(t, "canceling", a.json(t)["state"])
	}
	srv.Jobs.Canceled(id)
	gone := call(t, srv, http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusNoContent, gone.code)
	require.Empty(t, gone.body)

	done := mustSubmit(t, srv)
	srv.Jobs.Succeed(done, "ok")
	requireProblem(t, call(t, srv, http.MethodDelete, "/v1/jobs/"+done, ""), http.StatusConflict, "job-finished")
}

// Prefer: wait holds a submission until the job ends (303 to the result),
// and a long-poll until the job changes from the client's ETag.
func TestPreferWait(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})

	submitted := make(chan answer, 1)
	go func() {
		submitted <- send(srv, http.MethodPost, "/v1/jobs", sleepJob, "Prefer", "wait=10")
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Jobs.IDs()) == 0 {
		require.True(t, time.Now().Before(deadline), "the submission never reached the service")
		time.Sleep(time.Millisecond)
	}
	id := srv.Jobs.IDs()[0]
	srv.Jobs.Succeed(id, "ok")
	var a answer
	select {
	case a = <-submitted:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting submission did not answer when its job ended")
	}
	require.Equal(t, http.StatusSeeOther, a.code, "body: %s", a.body)
	require.Equal(t, "wait=10", a.header.Get("Preference-Applied"))
	require.Equal(t, "/v1/jobs/"+id+"/result", a.header.Get("Location"))

	// A long-poll answers as soon as the job differs from the client's ETag.
	moving := mustSubmit(t, srv)
	tag := call(t, srv, http.MethodGet, "/v1/jobs/"+moving, "").header.Get("ETag")
	polled := make(chan answer, 1)
	go func() { polled <- get(srv, "/v1/jobs/"+moving, "Prefer", "wait=10", "If-None-Match", tag) }()
	srv.Jobs.Start(moving)
	select {
	case a = <-polled:
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not answer when its job changed")
	}
	require.Equal(t, http.StatusOK, a.code)
	require.Equal(t, "wait=10", a.header.Get("Preference-Applied"))
	require.NotEqual(t, tag, a.header.Get("ETag"))
	require.Equal(t, "running", a.json(t)["state"])
}

// send is call for other goroutines than the test's: it reports a failed
// exchange as a zero answer, which the test's checks then reject.
func send(srv *httpapitest.Server, method, path, body string, headers ...string) answer {
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		return answer{}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, header: resp.Header, body: b}
}

func get(srv *httpapitest.Server, path string, headers ...string) answer {
	return send(srv, http.MethodGet, path, "", headers...)
}

// A listing leaves out what its record of a job cannot know (job.Unknown)
// instead of showing it as null or 1; every member it shows is GET's.
func TestListingLeavesOutWhatItCannotKnow(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{})
	queued := mustSubmit(t, srv)
	failed := mustSubmit(t, srv)
	srv.Jobs.Start(failed)
	srv.Jobs.Report(failed, job.Progress{Current: 1, Total: 2})
	srv.Jobs.Fail(failed, "http-503", "the target answered 503")

	var page struct {
		Jobs []map[string]any `json:"jobs"`
	}
	list := call(t, srv, http.MethodGet, "/v1/jobs", "")
	require.Equal(t, http.StatusOK, list.code)
	require.NoError(t, json.Unmarshal(list.body, &page))
	require.Len(t, page.Jobs, 2)
	byID := map[string]map[string]any{}
	for _, j := range page.Jobs {
		byID[j["id"].(string)] = j
	}
	for _, k := range []string{"error", "attempt", "startedAt", "progress", "callback", "retry"} {
		require.NotContains(t, byID[failed], k, "a listing does not know %s of a job that ran", k)
	}
	for _, k := range []string{"attempt", "startedAt", "progress", "error"} {
		require.Contains(t, byID[queued], k, "a listing knows %s of a job that has not run", k)
	}
	require.Nil(t, byID[queued]["startedAt"])
	require.EqualValues(t, 1, byID[queued]["attempt"])
	for id, l := range byID {
		got := call(t, srv, http.MethodGet, "/v1/jobs/"+id, "").json(t)
		for k, v := range l {
			require.Equal(t, got[k], v, "job %s: the listing's %s is not GET's", id, k)
		}
	}
}
