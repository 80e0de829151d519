package app

import (
	"context"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// A caller's kind whose name is taken fails start-up before anything
// listens or connects: with the API's address already in use, the error
// is the kind's, not the listener's, and nothing was started.
func TestStartRefusesATakenKindNameBeforeListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	vars := map[string]string{
		"JOBGATE_HTTP_ADDR":      ln.Addr().String(),
		"JOBGATE_DATA_DIR":       t.TempDir(),
		"JOBGATE_EMBEDDED_STORE": "memory",
		"JOBGATE_METRICS_ADDR":   "off",
	}
	cfg, err := LoadConfigFrom(func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
	require.NoError(t, err)
	taken := job.Define(job.KindSpec[struct{}]{
		Name: "sleep",
		Run:  func(context.Context, struct{}, job.Reporter) (any, error) { return nil, nil },
	})
	p, err := StartWith(context.Background(), cfg, Options{Out: io.Discard}, taken)
	require.Nil(t, p)
	require.ErrorContains(t, err, `"sleep"`)
	require.NotContains(t, err.Error(), "listen", "the kind is checked before the API listens")
}
