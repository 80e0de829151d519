package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// Start runs a whole all-in-one jobgate in this process (embedded Temporal
// in memory, worker, API, an extra kind) as a custom binary or a test
// would: a job submitted over HTTP succeeds through the process's one job
// service, and Close stops it all, freeing the API's port.
func TestStartAndClose(t *testing.T) {
	t.Setenv("JOBGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("JOBGATE_DATA_DIR", t.TempDir())
	t.Setenv("JOBGATE_EMBEDDED_STORE", "memory")
	t.Setenv("JOBGATE_EMBEDDED_TEMPORAL_PORT", "0")
	t.Setenv("JOBGATE_EMBEDDED_UI_PORT", "0")
	t.Setenv("JOBGATE_EMBEDDED_LOG_LEVEL", "none")
	t.Setenv("JOBGATE_LOG_LEVEL", "error")
	cfg, err := LoadConfig()
	require.NoError(t, err)
	type echoInput struct {
		Say string `json:"say"`
	}
	echo := job.Define(job.KindSpec[echoInput]{
		Name: "echo", Description: "Answers what it is told.", ExpectedDuration: "at once",
		InputSchema: `{"type":"object","required":["say"],"properties":{"say":{"type":"string"}}}`,
		Run:         func(_ context.Context, in echoInput, _ job.Reporter) (any, error) { return in, nil },
	})
	p, err := Start(t.Context(), cfg, echo)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			p.Close()
		}
	})
	require.NotEmpty(t, p.TemporalAddress())
	base := "http://" + p.Addr().String()

	resp, err := http.Post(base+"/v1/jobs", "application/json", strings.NewReader(`{"kind":"echo","input":{"say":"hello"}}`))
	require.NoError(t, err)
	var accepted struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&accepted))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := p.Jobs().Get(t.Context(), "default", accepted.ID)
		require.NoError(t, err)
		if j.State == job.StateSucceeded {
			break
		}
		require.True(t, time.Now().Before(deadline), "job %s still %s", accepted.ID, j.State)
		time.Sleep(50 * time.Millisecond)
	}
	resp, err = http.Get(base + "/v1/jobs/" + accepted.ID + "/result")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.JSONEq(t, `{"say":"hello"}`, string(body))

	p.Close()
	closed = true
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "the API stopped with Close")
}
