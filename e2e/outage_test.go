package e2e

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// With Temporal down, the API answers 503 with Retry-After within its call
// deadline instead of hanging, /readyz says so, and once Temporal is back
// service resumes by itself and every job accepted before the outage
// completes.
func TestTemporalOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dataDir := t.TempDir()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	temporal := startProcess(t, dataDir, ports) // Temporal and a worker, on a file
	const callTimeout = 2 * time.Second
	e := mustStartEnv(t, envOptions{
		noWorker:        true,
		temporalAddress: fmt.Sprintf("127.0.0.1:%d", ports.temporal),
		namespace:       "default",
		taskQueue:       "jobgate",
		callTimeout:     callTimeout,
	})

	var accepted []string
	for range 5 {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":2}}`)
		accepted = append(accepted, id)
	}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/readyz", "").StatusCode)

	require.NoError(t, temporal.cmd.Process.Signal(syscall.SIGKILL))
	<-temporal.done
	temporal.done <- nil

	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`},
		{http.MethodGet, "/v1/jobs/" + accepted[0], ""},
		{http.MethodDelete, "/v1/jobs/" + accepted[1], ""},
	} {
		start := time.Now()
		resp := e.do(req.method, req.path, req.body)
		elapsed := time.Since(start)
		requireProblem(t, resp, http.StatusServiceUnavailable, "unavailable")
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		require.Less(t, elapsed, callTimeout+5*time.Second, "%s %s answered within the call deadline", req.method, req.path)
		t.Logf("%s %s during the outage: 503 after %s", req.method, req.path, elapsed)
	}
	requireProblem(t, e.do(http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, "not-ready")

	startProcess(t, dataDir, ports)
	eventually(t, 60*time.Second, "service resumes", func() bool {
		return e.do(http.MethodGet, "/readyz", "").StatusCode == http.StatusOK
	})
	after, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	for _, id := range append(accepted, after) {
		e.waitState(id, job.StateSucceeded, 60*time.Second)
	}
}
