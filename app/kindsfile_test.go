package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRunStopsOnABadKindsFile: every role loads JOBGATE_KINDS_FILE at
// start-up, and a bad file stops it with the file, kind and field named,
// before anything listens or connects.
func TestRunStopsOnABadKindsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kinds.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"kinds": [{"name": "sleep", "workflowType": "W", "taskQueue": "q"}]}`), 0o600))
	for _, role := range []string{"all", "api", "worker"} {
		t.Run(role, func(t *testing.T) {
			t.Setenv("JOBGATE_ROLE", role)
			t.Setenv("JOBGATE_TEMPORAL_ADDRESS", "127.0.0.1:1")
			if role == "all" {
				t.Setenv("JOBGATE_TEMPORAL_ADDRESS", "")
			}
			t.Setenv("JOBGATE_DATA_DIR", t.TempDir())
			t.Setenv("JOBGATE_EMBEDDED_STORE", "memory")
			t.Setenv("JOBGATE_HTTP_ADDR", "127.0.0.1:0")
			t.Setenv("JOBGATE_KINDS_FILE", path)
			err := Run()
			require.ErrorContains(t, err, "kinds file "+path+`: kinds[0] ("sleep"): field "name": "sleep" is already a built-in kind`)
		})
	}
}
