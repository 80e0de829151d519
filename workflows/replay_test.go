package workflows_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Every recorded history of a real job (testdata/histories, recorded by
// e2e's TestRecordHistories) replays on today's workflow code: a change
// that is not deterministic for jobs already running fails here.
func TestReplayRecordedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*--*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded histories")
	// The built-in workflow kinds' code runs inside the Job workflow.
	kinds, err := job.NewRegistry(flow.Builtin()...)
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.Open(f)
			require.NoError(t, err)
			defer data.Close()
			history, err := client.HistoryFromJSON(data, client.HistoryJSONOptions{})
			require.NoError(t, err)
			// The Job workflow names its followers after its own ID.
			id := strings.TrimSuffix(strings.SplitN(filepath.Base(f), "--", 2)[1], ".json")
			replayer := worker.NewWorkflowReplayer()
			workflows.Register(replayer, kinds)
			require.NoError(t, replayer.ReplayWorkflowHistoryWithOptions(
				log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), history,
				worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}))
		})
	}
}
