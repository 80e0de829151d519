package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
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

// fetchAll is the input of the fan-out kind of docs/kinds.md, "Child
// jobs".
type fetchAll struct {
	URLs []string `json:"urls"`
}

// fetchAllWorkflow is that section's fragment as a kind's workflow: an
// http.request child job per URL, then each one's answer.
func fetchAllWorkflow(ctx workflow.Context, in fetchAll) (any, error) {
	var jobs []*flow.Job
	for _, url := range in.URLs {
		jobs = append(jobs, flow.StartJob(ctx, "http.request", map[string]any{"url": url}, flow.ChildOptions{Step: "fetch " + url}))
	}
	var statuses []int
	for _, j := range jobs {
		var res struct {
			Status int `json:"status"`
		}
		if err := j.Get(ctx, &res); err != nil { // a failed, canceled or unstartable child
			return nil, err
		}
		statuses = append(statuses, res.Status)
	}
	return statuses, nil
}

// docs/kinds.md, "Child jobs": the fan-out fragment starts a child job
// per URL, each a job of the parent's tenant listed under it and shown as
// a step with its jobId, and fans in their answers.
func TestDocsChildJobsFanOut(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(target.Close)
	kind := flow.Define(flow.Spec[fetchAll]{Name: "e2e.fetch-all", Workflow: fetchAllWorkflow})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{kind}, allowPrivate: true})
	urls := []string{target.URL + "/a", target.URL + "/missing", target.URL + "/b"}
	body, err := json.Marshal(map[string]any{"kind": "e2e.fetch-all", "input": fetchAll{URLs: urls}})
	require.NoError(t, err)
	id, _ := e.submit(string(body))

	done := e.waitState(id, job.StateSucceeded, 2*workerRoundTrip).JSON(t)
	require.JSONEq(t, `[200,404,200]`, string(e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").Body))
	for _, url := range urls {
		child := e.stepJob(done, "fetch "+url)
		require.Equal(t, "succeeded", child["state"])
		require.Equal(t, id, child["parentId"])
	}
	e.waitChildrenListed(id, len(urls))
}
