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

// docs/kinds.md, "Running the example": the saga binary, an order through
// its approval to its result, as printed.
func TestDocsSagaExample(t *testing.T) {
	t.Parallel()
	bin := mustBuild(t, "github.com/jobgate/jobgate/examples/saga/cmd/jobgate-saga")
	block := docBlock(t, "docs/kinds.md", "### Running the example", "jobgate-saga")
	got := newDocScript(t, block, map[string]string{"go build -o jobgate-saga ./examples/saga/cmd/jobgate-saga": bin}).run()
	require.Contains(t, got, `"waitingFor":[{"name":"approval"`)
	require.Regexp(t, `"reservation":"res-[^"]+","payment":"pay-[^"]+","tracking":"trk-[^"]+"`, got)
}
