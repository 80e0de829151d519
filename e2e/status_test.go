package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
)

// flakyTarget answers 503 (with Retry-After: retryAfter seconds) to its
// first fails requests, 200 {"ok":true} after; fails < 0 fails them all.
// It keeps when the first request came.
type flakyTarget struct {
	*httptest.Server
	calls atomic.Int32
	first atomic.Value // time.Time
}

func mustStartFlakyTarget(tb testing.TB, fails int, retryAfter int) *flakyTarget {
	tb.Helper()
	ft := &flakyTarget{}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(ft.calls.Add(1))
		if n == 1 {
			ft.first.Store(time.Now())
		}
		if fails < 0 || n <= fails {
			w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	tb.Cleanup(ft.Close)
	return ft
}

func (e *env) statusOf(id string) map[string]any {
	e.t.Helper()
	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
	return resp.JSON(e.t)
}

// A job whose attempts fail says so while it retries: it stays running,
// with retry.lastError (the attempt's error, as a job's own error is
// shown), when that attempt ended and when the next starts; startedAt is
// the first attempt's start, through every retry and after it succeeded.
func TestRetryingJobSaysWhyAndWhen(t *testing.T) {
	t.Parallel()
	target := mustStartFlakyTarget(t, 2, 2)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{
		"method": "GET", "url": target.URL + "/flaky", "maxAttempts": 4}}))

	// waiting polls until the job waits for attempt n, and checks what it says.
	waiting := func(n int) map[string]any {
		var st map[string]any
		eventually(t, 30*time.Second, fmt.Sprintf("waiting for attempt %d", n), func() bool {
			st = e.statusOf(id)
			r, _ := st["retry"].(map[string]any)
			return st["attempt"] == float64(n) && r != nil && r["nextAttemptAt"] != nil
		})
		require.Equal(t, "running", st["state"], "a retrying job is running: %v", st)
		require.Nil(t, st["error"], "the job has not failed")
		r := st["retry"].(map[string]any)
		lastError := r["lastError"].(map[string]any)
		require.Equal(t, httpapi.ProblemBase+"attempt-failed", lastError["type"])
		require.Equal(t, "The last attempt failed (http-503)", lastError["title"])
		require.Contains(t, lastError["detail"], "503")
		require.EqualValues(t, 4, r["maxAttempts"])
		last, next := parseTime(t, r["lastAttemptAt"]), parseTime(t, r["nextAttemptAt"])
		require.True(t, next.After(last), "the next attempt (%s) follows the last (%s)", next, last)
		require.InDelta(t, 2, next.Sub(last).Seconds(), 0.5, "the target's Retry-After sets the backoff")
		require.False(t, parseTime(t, st["updatedAt"]).Before(last), "updatedAt covers the failed attempt")
		require.NotNil(t, st["startedAt"], "a retrying job keeps its start: %v", st)
		return st
	}
	second := waiting(2)
	started := parseTime(t, second["startedAt"])
	firstCall := target.first.Load().(time.Time)
	require.False(t, started.After(firstCall), "startedAt (%s) is the first attempt's start, before its request (%s)", started, firstCall)
	require.Less(t, firstCall.Sub(started), 5*time.Second)

	third := waiting(3)
	require.Equal(t, second["startedAt"], third["startedAt"], "startedAt stays the first attempt's")

	done := e.waitState(id, job.StateSucceeded, 30*time.Second).JSON(t)
	require.EqualValues(t, 3, target.calls.Load())
	require.Equal(t, second["startedAt"], e.statusOf(id)["startedAt"], "a fresh read of the finished job too")
	require.EqualValues(t, 3, done["attempt"])
	require.Equal(t, second["startedAt"], done["startedAt"], "a finished job keeps its first start")
	require.NotContains(t, done, "retry", "a finished job is not retrying")
	require.Nil(t, done["error"])
}

// A job whose every attempt fails keeps its first start and last attempt
// when it has failed: its error is the last attempt's, and it no longer
// says it retries.
func TestFailedAfterRetriesKeepsItsFirstStart(t *testing.T) {
	t.Parallel()
	target := mustStartFlakyTarget(t, -1, 1)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{
		"method": "GET", "url": target.URL + "/down", "maxAttempts": 3}}))
	var retrying map[string]any
	eventually(t, 30*time.Second, "retrying", func() bool {
		retrying = e.statusOf(id)
		return retrying["retry"] != nil && retrying["startedAt"] != nil
	})
	failed := e.waitState(id, job.StateFailed, 30*time.Second).JSON(t)
	require.EqualValues(t, 3, target.calls.Load())
	require.EqualValues(t, 3, failed["attempt"])
	require.Equal(t, retrying["startedAt"], failed["startedAt"], "the failed job keeps its first start")
	require.NotContains(t, failed, "retry")
	e2 := failed["error"].(map[string]any)
	require.Equal(t, httpapi.ProblemBase+"job-failed", e2["type"])
	require.Equal(t, "The job failed (http-503)", e2["title"])
	require.Equal(t, retrying["retry"].(map[string]any)["lastError"].(map[string]any)["detail"], e2["detail"], "the job's error is its last attempt's")
}

// A listing never contradicts GET: every member a listed job shows is the
// one GET shows, for failed, retried and succeeded jobs; what visibility
// cannot know (a failed job's error and attempts, the webhook) is left
// out, not shown as null or 1.
func TestListingAgreesWithGet(t *testing.T) {
	t.Parallel()
	failing := mustStartFlakyTarget(t, -1, 1)
	flaky := mustStartFlakyTarget(t, 1, 1)
	fine := mustStartFlakyTarget(t, 0, 1)
	rc := mustStartReceiver(t, http.StatusNoContent)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	submit := func(url string, attempts int) string {
		id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "callbackUrl": rc.URL + "/hooks",
			"input": map[string]any{"method": "GET", "url": url, "maxAttempts": attempts}}))
		return id
	}
	failed, retried, succeeded := submit(failing.URL, 2), submit(flaky.URL, 3), submit(fine.URL, 1)
	want := map[string]job.State{failed: job.StateFailed, retried: job.StateSucceeded, succeeded: job.StateSucceeded}
	for id, state := range want {
		e.waitState(id, state, 30*time.Second)
	}

	var listed map[string]map[string]any
	eventually(t, 15*time.Second, "the listing shows the three jobs finished", func() bool {
		listed = map[string]map[string]any{}
		resp := e.do(http.MethodGet, "/v1/jobs?kind=http.request&limit=100", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var body struct {
			Jobs []map[string]any `json:"jobs"`
		}
		require.NoError(t, json.Unmarshal(resp.Body, &body))
		for _, j := range body.Jobs {
			id, _ := j["id"].(string)
			if state, ok := want[id]; ok && j["state"] == string(state) {
				listed[id] = j
			}
		}
		return len(listed) == len(want)
	})
	for id, l := range listed {
		got := e.statusOf(id)
		for k, v := range l {
			require.True(t, reflect.DeepEqual(v, got[k]), "job %s (%s): the listing shows %s = %v, GET %v", id, l["state"], k, v, got[k])
		}
		for _, k := range []string{"id", "kind", "state", "createdAt", "updatedAt", "completedAt", "statusUrl", "resultUrl", "priority"} {
			require.Contains(t, l, k, "a listing carries %s", k)
		}
		require.NotContains(t, l, "callback", "a listing does not know the webhook's delivery")
		require.NotContains(t, l, "attempt", "visibility does not know the attempt of a job that ran")
		require.NotContains(t, l, "startedAt", "visibility does not know when a job's work started")
	}
	require.NotContains(t, listed[failed], "error", "a failed job's error is not in visibility")
	require.Nil(t, listed[succeeded]["error"], "a succeeded job has no error, which the listing knows")
	require.Contains(t, listed[succeeded], "error")
	require.EqualValues(t, 2, e.statusOf(failed)["attempt"])
	require.EqualValues(t, 2, e.statusOf(retried)["attempt"])
	require.NotNil(t, e.statusOf(failed)["startedAt"])
}

// requireNoRegress fails when next, a status a client sees after prev,
// moved back: an earlier updatedAt, a lower attempt, a startedAt or
// progress lost or a startedAt changed.
func requireNoRegress(tb testing.TB, what string, prev, next map[string]any) {
	tb.Helper()
	require.False(tb, parseTime(tb, next["updatedAt"]).Before(parseTime(tb, prev["updatedAt"])),
		"%s: updatedAt went back from %v to %v\nbefore: %v\nafter:  %v", what, prev["updatedAt"], next["updatedAt"], prev, next)
	require.GreaterOrEqual(tb, next["attempt"], prev["attempt"], "%s: the attempt went down", what)
	if prev["startedAt"] != nil {
		require.Equal(tb, prev["startedAt"], next["startedAt"], "%s: startedAt changed or was lost\nbefore: %v\nafter:  %v", what, prev, next)
	}
	if prev["progress"] != nil {
		require.NotNil(tb, next["progress"], "%s: progress was lost\nbefore: %v\nafter:  %v", what, prev, next)
	}
}

// No status a client sees moves back: each job's event stream, looked up
// often (so that it reads the job in the moment its work has ended and its
// workflow closes, where the old bug showed a running job with no start or
// progress, updatedAt back at createdAt), never shows less than the event
// before; the webhook and GET of the finished job show no less than the
// stream's last event.
func TestStatusNeverMovesBack(t *testing.T) {
	t.Parallel()
	rc := mustStartReceiver(t, http.StatusNoContent)
	e := mustStartEnv(t, envOptions{allowPrivate: true, watchInterval: 5 * time.Millisecond})
	const jobs = 8
	ids := make([]string, jobs)
	for i := range ids {
		ids[i], _ = e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 2}, "callbackUrl": rc.URL + "/hooks"}))
	}
	streams := make([][]sseEvent, jobs)
	errs := make([]error, jobs)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			// Fresh streams, so each also starts from a GET of its own.
			streams[i], errs[i] = e.streamEvents(t.Context(), id, "")
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	for i, id := range ids {
		events := streams[i]
		require.NotEmpty(t, events)
		last := events[len(events)-1].data
		require.Equal(t, "succeeded", last["state"], "job %s: the stream ends with the terminal status", id)
		sawProgress := false
		for n := 1; n < len(events); n++ {
			requireNoRegress(t, fmt.Sprintf("job %s, event %d of %d", id, n+1, len(events)), events[n-1].data, events[n].data)
			sawProgress = sawProgress || events[n].data["progress"] != nil && events[n].data["state"] == "running"
		}
		require.True(t, sawProgress, "job %s: the stream showed the job running with progress: %v", id, events)
		requireNoRegress(t, "job "+id+": GET after the stream", last, e.statusOf(id))
	}
	eventually(t, 30*time.Second, "every webhook delivered", func() bool { return len(rc.deliveries()) >= jobs })
	for _, d := range rc.deliveries() {
		var hook struct {
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(d.body, &hook))
		id, _ := hook.Data["id"].(string)
		for i := range ids {
			if ids[i] == id {
				events := streams[i]
				requireNoRegress(t, "job "+id+": its webhook", events[len(events)-1].data, hook.Data)
			}
		}
	}
}

// A job canceled while it runs keeps, once canceled, the start and the
// last progress it showed while it ran.
func TestCanceledJobKeepsWhatItShowed(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":30}}`)
	var running map[string]any
	eventually(t, workerRoundTrip, "running with progress", func() bool {
		running = e.statusOf(id)
		p, _ := running["progress"].(map[string]any)
		return running["state"] == "running" && p != nil && p["current"].(float64) >= 1
	})
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
	canceled := e.waitState(id, job.StateCanceled, workerRoundTrip).JSON(t)
	requireNoRegress(t, "the canceled job", running, canceled)
	require.Equal(t, running["startedAt"], canceled["startedAt"])
	require.GreaterOrEqual(t, canceled["progress"].(map[string]any)["current"], running["progress"].(map[string]any)["current"])
}
