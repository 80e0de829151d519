package external_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
)

// builtin stands for the kinds registered before the file's.
var builtin = []job.Kind{job.Define(job.KindSpec[struct{}]{Name: "sleep",
	Run: func(context.Context, struct{}, job.Reporter) (any, error) { return nil, nil }})}

// TestLoadExample loads the kinds file that docs/kinds.md shows, so the
// documentation cannot drift from what jobgate accepts.
func TestLoadExample(t *testing.T) {
	t.Parallel()
	kinds, err := external.Load(filepath.Join("..", "examples", "external", "kinds.json"), builtin, "jobgate")
	require.NoError(t, err)
	require.Len(t, kinds, 1)
	k := kinds[0]
	require.Equal(t, "report.build", k.Name)
	ext, ok := external.Of(k)
	require.True(t, ok)
	require.Equal(t, external.Workflow{Type: "BuildReport", TaskQueue: "reports"}, *ext)
	require.Equal(t, job.Plan{Expected: 5 * time.Second, Timeout: time.Hour}, k.Plan(nil))
	require.Len(t, k.Inputs, 1)
	require.Equal(t, "approve", k.Inputs[0].Name)

	// The kinds become a registry that enforces their schemas.
	r, err := job.NewRegistry(append(builtin, kinds...)...)
	require.NoError(t, err)
	_, err = r.Check("report.build", []byte(`{"pages": 0}`))
	require.ErrorAs(t, err, new(*job.ValidationError))
	_, err = r.Check("report.build", []byte(`{"pages": 2, "approval": true}`))
	require.NoError(t, err)
	require.ErrorAs(t, r.CheckInput("report.build", "approve", []byte(`{}`)), new(*job.ValidationError))
	require.NoError(t, r.CheckInput("report.build", "approve", []byte(`{"by": "ada"}`)))
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	kinds, err := external.Parse("k.json", []byte(`{"kinds": [{"name": "a", "workflowType": "A", "taskQueue": "q"}]}`), nil, "jobgate")
	require.NoError(t, err)
	require.Equal(t, job.Plan{Expected: external.DefaultExpected, Timeout: external.DefaultExpected + time.Hour}, kinds[0].Plan(nil))
}

// TestLoadRefusesBadFiles: every bad file stops start-up with a message
// naming the file, the kind and the field.
func TestLoadRefusesBadFiles(t *testing.T) {
	t.Parallel()
	ok := `"workflowType": "W", "taskQueue": "q"`
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"syntax", "{\"kinds\": [\n  {\"name\": \"a\",}\n]}", []string{"not valid JSON at line 2"}},
		{"trailing data", `{"kinds": [{"name": "a", ` + ok + `}]} {}`, []string{"unexpected data"}},
		{"unknown top-level field", `{"kind": []}`, []string{`unknown field "kind"`}},
		{"no kinds", `{"kinds": []}`, []string{`field "kinds"`}},
		{"unknown kind field", `{"kinds": [{"name": "a", ` + ok + `, "queue": "x"}]}`, []string{`kinds[0] ("a")`, `unknown field "queue"`}},
		{"unknown input field", `{"kinds": [{"name": "a", ` + ok + `, "inputs": [{"name": "i", "shema": {}}]}]}`, []string{`kinds[0] ("a")`, `unknown field "shema"`}},
		{"wrong type", `{"kinds": [{"name": "a", ` + ok + `, "expectedSeconds": "5"}]}`, []string{`kinds[0] ("a")`, `field "expectedSeconds" must be a number`}},
		{"invalid input schema", `{"kinds": [{"name": "a", ` + ok + `, "inputSchema": {"type": "objekt"}}]}`, []string{`kinds[0] ("a")`, `field "inputSchema"`}},
		{"input schema not JSON Schema", `{"kinds": [{"name": "a", ` + ok + `, "inputSchema": {"minimum": "x"}}]}`, []string{`kinds[0] ("a")`, `field "inputSchema"`}},
		{"invalid schema of an input", `{"kinds": [{"name": "a", ` + ok + `, "inputs": [{"name": "i", "schema": {"type": 5}}]}]}`, []string{`kinds[0] ("a")`, `field "inputs[0]"`}},
		{"bad input name", `{"kinds": [{"name": "a", ` + ok + `, "inputs": [{"name": "a b"}]}]}`, []string{`kinds[0] ("a")`, `field "inputs[0]"`, `"a b"`}},
		{"input declared twice", `{"kinds": [{"name": "a", ` + ok + `, "inputs": [{"name": "i"}, {"name": "i"}]}]}`, []string{`kinds[0] ("a")`, `field "inputs"`, `declared twice`}},
		{"declared twice", `{"kinds": [{"name": "a", ` + ok + `}, {"name": "a", ` + ok + `}]}`, []string{`kinds[1] ("a")`, `field "name"`, "declared earlier in this file"}},
		{"over a built-in", `{"kinds": [{"name": "sleep", ` + ok + `}]}`, []string{`kinds[0] ("sleep")`, `field "name"`, "built-in"}},
		{"reserved name", `{"kinds": [{"name": "jobgate.x", ` + ok + `}]}`, []string{`kinds[0] ("jobgate.x")`, `field "name"`}},
		{"missing name", `{"kinds": [{` + ok + `}]}`, []string{`kinds[0]`, `field "name" is missing`}},
		{"missing workflow type", `{"kinds": [{"name": "a", "taskQueue": "q"}]}`, []string{`kinds[0] ("a")`, `field "workflowType" is missing`}},
		{"jobgate's workflow type", `{"kinds": [{"name": "a", "workflowType": "Job", "taskQueue": "q"}]}`, []string{`kinds[0] ("a")`, `field "workflowType"`}},
		{"missing task queue", `{"kinds": [{"name": "a", "workflowType": "W"}]}`, []string{`kinds[0] ("a")`, `field "taskQueue" is missing`}},
		{"jobgate's task queue", `{"kinds": [{"name": "a", "workflowType": "W", "taskQueue": "jobgate"}]}`, []string{`kinds[0] ("a")`, `field "taskQueue"`}},
		{"negative expected", `{"kinds": [{"name": "a", ` + ok + `, "expectedSeconds": -1}]}`, []string{`kinds[0] ("a")`, `field "expectedSeconds"`}},
		{"timeout under expected", `{"kinds": [{"name": "a", ` + ok + `, "expectedSeconds": 60, "timeoutSeconds": 30}]}`, []string{`kinds[0] ("a")`, `field "timeoutSeconds"`}},
		{"zero timeout", `{"kinds": [{"name": "a", ` + ok + `, "timeoutSeconds": 0}]}`, []string{`kinds[0] ("a")`, `field "timeoutSeconds"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "kinds.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.file), 0o600))
			_, err := external.Load(path, builtin, "jobgate")
			require.Error(t, err)
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "kinds file "+path+": "), "the file is named: %s", msg)
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := external.Load(filepath.Join(t.TempDir(), "nope.json"), builtin, "jobgate")
	require.ErrorContains(t, err, "nope.json (JOBGATE_KINDS_FILE)")
}

// TestDocsShowTheExamples: docs/kinds.md shows the example kinds file and
// workers as they are in the repository, which the tests load and run.
func TestDocsShowTheExamples(t *testing.T) {
	t.Parallel()
	docs, err := os.ReadFile(filepath.Join("..", "docs", "kinds.md"))
	require.NoError(t, err)
	for _, path := range []string{
		"examples/external/kinds.json",
		"examples/external/goworker/main.go",
		"examples/external/tsworker/src/workflows.ts",
		"examples/external/tsworker/src/worker.ts",
	} {
		src, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
		require.NoError(t, err)
		require.Contains(t, string(docs), strings.TrimRight(string(src), "\n"), "docs/kinds.md shows %s as it is", path)
	}
}

// TestPipelineRefusesExternalSteps: a pipeline step runs as a child Job
// workflow, which cannot run an external kind's workflow; it is refused
// before acceptance rather than failing later.
func TestPipelineRefusesExternalSteps(t *testing.T) {
	t.Parallel()
	kinds, err := external.Parse("k.json", []byte(`{"kinds": [{"name": "ext", "workflowType": "W", "taskQueue": "q"}]}`), nil, "jobgate")
	require.NoError(t, err)
	r, err := job.NewRegistry(append(flow.Builtin(), kinds...)...)
	require.NoError(t, err)
	_, err = r.Check("pipeline", []byte(`{"steps": [{"id": "a", "kind": "ext", "input": {}}]}`))
	var verr *job.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Contains(t, verr.Error()+fmt.Sprint(verr.Fields), "external kind")
}
