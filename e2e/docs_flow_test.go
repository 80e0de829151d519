package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// README, "Jobs that are workflows, with curl": the approval and the
// pipeline blocks, as printed, against a running all-in-one.
func TestDocsREADMEWorkflows(t *testing.T) {
	t.Parallel()
	port := freeLoopbackPort(t)
	startProcess(t, t.TempDir(), processPorts{http: port, temporal: freeLoopbackPort(t)})
	blocks := docBlocks(t, "README.md", "## Jobs that are workflows, with curl")
	require.Len(t, blocks, 2)
	approval := newDocScriptOn(t, blocks[0], nil, map[string]int{"8080": port}).run()
	require.Contains(t, approval, `"waitingFor":[{"name":"decision"`)
	require.Contains(t, approval, `{"approved":true,"comment":"go"}`)
	pipeline := newDocScriptOn(t, blocks[1], nil, map[string]int{"8080": port}).run()
	require.Contains(t, pipeline, `"steps":[{"id":"a"`)
	require.Contains(t, pipeline, `"state":"succeeded","resultUrl":"/v1/jobs/`)
}
