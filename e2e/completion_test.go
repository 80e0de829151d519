package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A job's end reaches a waiting submission and a long-poll through
// Temporal's long-poll on the workflow's close, not the watcher's polling:
// with a look-up interval of a minute, both still answer as soon as the
// job ends. A submission whose job outlives its wait still gets its 202.
func TestCompletionReachesWaitersWithoutPolling(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{watchInterval: time.Minute})

	start := time.Now()
	resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Prefer", "wait=30")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "body: %s", resp.Body)
	require.Less(t, time.Since(start), 20*time.Second, "answered on completion, not after the minute's look-up")

	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":2}}`)
	running := e.waitState(id, "running", workerRoundTrip)
	start = time.Now()
	held := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", "Prefer", "wait=30", "If-None-Match", running.Header.Get("ETag"))
	require.Equal(t, http.StatusOK, held.StatusCode)
	require.Equal(t, "succeeded", held.JSON(t)["state"])
	require.Less(t, time.Since(start), 20*time.Second)

	start = time.Now()
	long := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":600}}`, "Prefer", "wait=1")
	require.Equal(t, http.StatusAccepted, long.StatusCode, "body: %s", long.Body)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	e.do(http.MethodDelete, "/v1/jobs/"+long.JSON(t)["id"].(string), "")
}

// A change a workflow kind's history records before its end (here a
// pipeline's first step ending, written to its memo) reaches a long-poll
// as Temporal records it, not at the watcher's next look-up: with a look-up
// interval of a minute, a long-poll waiting on the pipeline while that
// step runs answers with the step succeeded within moments of its end
// (without the close waiter's signal it would answer 304 at its wait's
// end).
func TestHistoryChangeReachesALongPollWithoutPolling(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{watchInterval: time.Minute})
	id, _ := e.submit(`{"kind":"pipeline","input":{"steps":[
		{"id":"a","kind":"sleep","input":{"seconds":2}},
		{"id":"b","kind":"sleep","input":{"seconds":60},"after":["a"]}]}}`)
	defer e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	var held response
	eventually(t, workerRoundTrip, "step a running", func() bool {
		held = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
		return stepsOf(held.JSON(t))["a"]["state"] == "running"
	})
	for {
		held = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", "Prefer", "wait=20", "If-None-Match", held.Header.Get("ETag"))
		require.Equal(t, http.StatusOK, held.StatusCode, "the long-poll answered no change: %s", held.Body)
		if stepsOf(held.JSON(t))["a"]["state"] == "succeeded" {
			break
		}
	}
	answered := time.Now()
	aEnd := parseTime(t, e.stepJob(held.JSON(t), "a")["completedAt"])
	require.Less(t, answered.Sub(aEnd), 10*time.Second, "step a ended at %s, the long-poll answered at %s", aEnd, answered)
}
