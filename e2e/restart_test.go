package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// A Temporal server restarted while jobs run (stopped, down for a few
// seconds, started again on the same port and store) restarts none of
// them: the worker's heartbeats fail while it is down, the work goes on,
// and every job finishes on its first attempt.
func TestTemporalRestartKeepsRunningJobsOnTheirAttempt(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a Temporal server")
	}
	t.Parallel()
	opts := devserver.Options{
		DatabaseFile: t.TempDir() + "/temporal.db",
		Port:         freeLoopbackPort(t),
		LogLevel:     "none",
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	}
	srv, err := devserver.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	e := mustStartEnv(t, envOptions{temporalAddress: srv.FrontendAddress(), namespace: srv.Namespace()})

	const jobs = 3
	var ids []string
	for range jobs {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":12}}`)
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitState(id, job.StateRunning, workerRoundTrip)
	}

	const outage = 3 * time.Second
	down := time.Now()
	require.NoError(t, srv.Stop())
	time.Sleep(outage) // the outage itself, not a wait for a condition
	srv, err = devserver.Start(opts)
	require.NoError(t, err)
	t.Logf("Temporal was down for %s (stop, %s, start again)", time.Since(down).Round(time.Millisecond), outage)

	for _, id := range ids {
		body := e.waitState(id, job.StateSucceeded, time.Minute).JSON(t)
		require.EqualValues(t, 1, body["attempt"], "job %s went on on its first attempt through the restart", id)
	}
}
