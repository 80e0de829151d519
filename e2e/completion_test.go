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
