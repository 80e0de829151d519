package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// Prefer: wait on a short job answers 303 to the result in one round trip.
func TestSubmitWaitShortJobAnswers303(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Prefer", "wait=30")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "body: %s", resp.Body)
	require.Equal(t, "wait=30", resp.Header.Get("Preference-Applied"))
	body := resp.JSON(t)
	require.Equal(t, "succeeded", body["state"])
	require.Equal(t, "/v1/jobs/"+body["id"].(string)+"/result", resp.Header.Get("Location"))
	require.JSONEq(t, `{"slept":1}`, string(e.do(http.MethodGet, resp.Header.Get("Location"), "").Body))
}

// Prefer: wait shorter than the job answers the normal 202 once the wait is
// over; respond-async answers at once; a failed job answers 200.
func TestSubmitWaitLongJobAnswers202AfterTheWait(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	start := time.Now()
	resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":10}}`, "Prefer", "wait=1")
	elapsed := time.Since(start)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.GreaterOrEqual(t, elapsed, time.Second, "it waited")
	require.Less(t, elapsed, 10*time.Second, "it did not wait for the job")
	require.Empty(t, resp.Header.Get("Preference-Applied"))
	require.Contains(t, []any{"queued", "running"}, resp.JSON(t)["state"])
	t.Logf("wait=1 on a 10 s job answered 202 after %s", elapsed)
	e.do(http.MethodDelete, resp.Header.Get("Location"), "")

	async := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Prefer", "respond-async, wait=5")
	require.Equal(t, http.StatusAccepted, async.StatusCode)
	require.Equal(t, "respond-async", async.Header.Get("Preference-Applied"))

	failed := e.do(http.MethodPost, "/v1/jobs", `{"kind":"http.request","input":{"url":"http://127.0.0.1:1/","maxAttempts":1}}`, "Prefer", "wait=30")
	require.Equal(t, http.StatusOK, failed.StatusCode, "body: %s", failed.Body)
	require.Equal(t, "failed", failed.JSON(t)["state"])
}

// Status answers carry an ETag; If-None-Match gets 304 while nothing
// changed, and a long-poll with it answers 304 after the wait.
func TestETagAnd304(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	first := e.do(http.MethodGet, "/v1/jobs/"+id, "")
	tag := first.Header.Get("ETag")
	require.NotEmpty(t, tag)

	same := e.do(http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", tag)
	require.Equal(t, http.StatusNotModified, same.StatusCode)
	require.Empty(t, same.Body)
	require.Equal(t, tag, same.Header.Get("ETag"))

	other := e.do(http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", `W/"something-else"`)
	require.Equal(t, http.StatusOK, other.StatusCode)

	start := time.Now()
	polled := e.do(http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", tag, "Prefer", "wait=1")
	require.Equal(t, http.StatusNotModified, polled.StatusCode)
	require.GreaterOrEqual(t, time.Since(start), time.Second)

	// A change (here a cancel request) makes the tag stale.
	e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	changed := e.do(http.MethodGet, "/v1/jobs/"+id, "", "If-None-Match", tag)
	require.Equal(t, http.StatusOK, changed.StatusCode)
	require.NotEqual(t, tag, changed.Header.Get("ETag"))
}

// A long-poll returns as soon as the progress changes, not after its wait.
func TestLongPollReturnsOnProgress(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":30}}`)
	running := e.waitState(id, job.StateRunning, workerRoundTrip)
	before := running.JSON(t)["progress"]

	var took []time.Duration
	for range 3 {
		start := time.Now()
		resp := e.do(http.MethodGet, "/v1/jobs/"+id, "", "Prefer", "wait=20", "If-None-Match", running.Header.Get("ETag"))
		elapsed := time.Since(start)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "wait=20", resp.Header.Get("Preference-Applied"))
		after := resp.JSON(t)["progress"]
		require.NotEqual(t, before, after, "it returned because the progress changed")
		// Progress moves every second; the answer follows within the
		// heartbeat and watch intervals.
		require.Less(t, elapsed, 15*time.Second, "answered on the change, not after wait=20")
		t.Logf("long-poll answered after %s with %v", elapsed, after)
		took = append(took, elapsed)
		running, before = resp, after
	}
	// Each answer gets a loaded-machine bound; the typical one must show
	// the second-by-second progress (1 s heartbeats, 250 ms watch).
	slices.Sort(took)
	require.Less(t, took[1], 5*time.Second, "median long-poll answer")
	e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	e.waitState(id, job.StateCanceled, workerRoundTrip)
}

// An event stream delivers each state through to succeeded, then ends; a
// client reconnecting with the last event id gets nothing it already has.
func TestEventStream(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":2}}`)

	events := e.readEvents(t, id, "")
	require.NotEmpty(t, events)
	var states []string
	seen := map[string]bool{}
	for _, ev := range events {
		require.NotEmpty(t, ev.id, "every status event has an id")
		require.False(t, seen[ev.id], "event ids are distinct")
		seen[ev.id] = true
		state, _ := ev.data["state"].(string)
		states = append(states, state)
	}
	require.Equal(t, "succeeded", states[len(states)-1], "ends with the terminal status: %v", states)
	require.Contains(t, states, "running", "states: %v", states)
	for _, s := range states[:len(states)-1] {
		require.NotEqual(t, "succeeded", s)
	}

	last := events[len(events)-1].id
	require.Empty(t, e.readEvents(t, id, last), "nothing new after the last event")
	again := e.readEvents(t, id, "")
	require.Len(t, again, 1)
	require.Equal(t, last, again[0].id)
}

// Listing pages through all of a tenant's jobs with no duplicates or gaps,
// filters by state and kind, and refuses bad parameters.
func TestListingPagesThroughJobs(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	const n = 120
	want := map[string]bool{}
	for range n {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
		want[id] = true
	}
	eventually(t, 30*time.Second, "all jobs visible", func() bool {
		return e.countWorkflows(fmt.Sprintf("JobTenant = '%s'", e.Tenant)) == n
	})

	got := map[string]bool{}
	path := "/v1/jobs?limit=25"
	pages := 0
	for path != "" {
		resp := e.do(http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
		body := resp.JSON(t)
		for _, j := range body["jobs"].([]any) {
			id := j.(map[string]any)["id"].(string)
			require.False(t, got[id], "duplicate %s", id)
			got[id] = true
			require.Equal(t, "queued", j.(map[string]any)["state"])
		}
		pages++
		path = ""
		if next, ok := body["nextCursor"].(string); ok {
			link := resp.Header.Get("Link")
			require.Contains(t, link, `rel="next"`)
			path = strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
			require.Contains(t, path, "cursor="+next)
		}
		require.Less(t, pages, 10)
	}
	require.Equal(t, want, got, "every job once")
	require.Equal(t, 5, pages)

	queued := e.do(http.MethodGet, "/v1/jobs?state=queued&kind=sleep&limit=100", "").JSON(t)
	require.Len(t, queued["jobs"], 100)
	require.Empty(t, e.do(http.MethodGet, "/v1/jobs?state=succeeded", "").JSON(t)["jobs"])

	requireProblem(t, e.do(http.MethodGet, "/v1/jobs?state=done", ""), http.StatusBadRequest, "invalid-query")
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs?limit=0", ""), http.StatusBadRequest, "invalid-query")
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs?kind=nope", ""), http.StatusBadRequest, "invalid-query")
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs?cursor=garbage", ""), http.StatusBadRequest, "invalid-cursor")
	first := e.do(http.MethodGet, "/v1/jobs?limit=10", "").JSON(t)
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs?state=queued&cursor="+first["nextCursor"].(string), ""), http.StatusBadRequest, "invalid-cursor")

	// Another tenant sees none of them.
	other := mustStartEnv(t, envOptions{noWorker: true})
	require.Empty(t, other.do(http.MethodGet, "/v1/jobs", "").JSON(t)["jobs"])
}

func TestKinds(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	resp := e.do(http.MethodGet, "/v1/kinds", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	kinds := resp.JSON(t)["kinds"].([]any)
	names := map[string]map[string]any{}
	for _, k := range kinds {
		names[k.(map[string]any)["name"].(string)] = k.(map[string]any)
	}
	require.Contains(t, names, "sleep")
	require.Contains(t, names, "http.request")
	schema := names["sleep"]["inputSchema"].(map[string]any)
	require.Equal(t, []any{"seconds"}, schema["required"])
	require.NotEmpty(t, names["sleep"]["description"])
	require.NotEmpty(t, names["sleep"]["expectedDuration"])
}

// Location and links honour a configured public URL, or forwarded headers
// from trusted proxies only.
func TestAbsoluteURLs(t *testing.T) {
	t.Parallel()
	body := `{"kind":"sleep","input":{"seconds":1}}`
	public := mustStartEnv(t, envOptions{noWorker: true, publicURL: "https://jobs.example.com/"})
	_, resp := public.submit(body)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "https://jobs.example.com/v1/jobs/"), resp.Header.Get("Location"))
	require.Equal(t, resp.Header.Get("Location"), resp.JSON(t)["statusUrl"])

	proxied := mustStartEnv(t, envOptions{noWorker: true, proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	_, resp = proxied.submit(body, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "api.example.org")
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "https://api.example.org/v1/jobs/"), resp.Header.Get("Location"))

	untrusted := mustStartEnv(t, envOptions{noWorker: true, proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	_, resp = untrusted.submit(body, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example")
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/v1/jobs/"), resp.Header.Get("Location"))
}
