package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jobgate/jobgate/job"
)

// TestRecordHistories writes the histories of real jobs, one per path
// through the Job workflow, to workflows/testdata/histories (named
// <case>--<workflow id>.json, since replay needs the ID), where
// workflows' replay test checks that today's workflow code still replays
// them: a change that would break running jobs fails there. Run it with
// JOBGATE_RECORD_HISTORIES=1 when a change is meant to be versioned, and
// keep the old files.
func TestRecordHistories(t *testing.T) {
	if os.Getenv("JOBGATE_RECORD_HISTORIES") == "" {
		t.Skip("set JOBGATE_RECORD_HISTORIES=1 to record workflow histories")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	record := func(name, id string) {
		it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		h := &historypb.History{}
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			h.Events = append(h.Events, ev)
		}
		data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join("..", "workflows", "testdata", "histories", name+"--"+id+".json"), data, 0o644))
	}

	ok, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	e.waitState(ok, job.StateSucceeded, 15*time.Second)
	record("sleep-succeeded", ok)

	canceled, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
	e.waitState(canceled, job.StateRunning, workerRoundTrip)
	e.do(http.MethodDelete, "/v1/jobs/"+canceled, "")
	e.waitState(canceled, job.StateCanceled, 15*time.Second)
	record("sleep-canceled", canceled)

	failed, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": target.URL, "maxAttempts": 2}}))
	e.waitState(failed, job.StateFailed, 20*time.Second)
	record("http-request-failed", failed)

	batch, _ := e.submit(mustJSON(t, map[string]any{"kind": "batch.http", "input": map[string]any{
		"requests": []map[string]any{{"url": target.URL, "maxAttempts": 1}}}}))
	e.waitState(batch, job.StateSucceeded, 20*time.Second)
	record("batch-succeeded", batch)

	rc := mustStartReceiver(t, http.StatusNoContent)
	hooked, _ := e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 0}, "callbackUrl": rc.URL}))
	e.callbackOf(hooked, job.CallbackDelivered, 20*time.Second)
	record("sleep-webhook", hooked)

	approved, _ := e.submit(mustJSON(t, map[string]any{"kind": "approval", "input": map[string]any{"prompt": "ok?", "timeoutSeconds": 600}, "callbackUrl": rc.URL}))
	eventually(t, 20*time.Second, "waiting", func() bool {
		w, _ := e.do(http.MethodGet, "/v1/jobs/"+approved, "").JSON(t)["waitingFor"].([]any)
		return len(w) == 1
	})
	require.Equal(t, http.StatusOK, e.sendInput(approved, "decision", `{"approved":true}`).StatusCode)
	e.waitState(approved, job.StateSucceeded, 20*time.Second)
	record("approval-approved", approved)

	timedOut, _ := e.submit(`{"kind":"approval","input":{"timeoutSeconds":1}}`)
	e.waitState(timedOut, job.StateFailed, 20*time.Second)
	record("approval-timed-out", timedOut)

	pipeline, _ := e.submit(`{"kind":"pipeline","input":{"steps":[
		{"id":"a","kind":"sleep","input":{"seconds":1}},
		{"id":"b","kind":"sleep","input":{"seconds":0}},
		{"id":"c","kind":"sleep","input":{"seconds":0},"after":["a","b"]}]}}`)
	e.waitState(pipeline, job.StateSucceeded, 30*time.Second)
	record("pipeline-succeeded", pipeline)

	failedPipeline, _ := e.submit(mustJSON(t, map[string]any{"kind": "pipeline", "input": map[string]any{"steps": []any{
		map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 1}},
		map[string]any{"id": "b", "kind": "http.request", "input": map[string]any{"url": target.URL, "maxAttempts": 1}},
		map[string]any{"id": "c", "kind": "sleep", "input": map[string]any{"seconds": 0}, "after": []string{"a", "b"}},
	}}}))
	e.waitState(failedPipeline, job.StateFailed, 30*time.Second)
	record("pipeline-failed", failedPipeline)

	canceledPipeline, _ := e.submit(`{"kind":"pipeline","input":{"steps":[{"id":"a","kind":"sleep","input":{"seconds":600}},{"id":"b","kind":"approval","input":{"timeoutSeconds":600}}]}}`)
	eventually(t, 20*time.Second, "steps running", func() bool {
		steps := stepsOf(e.do(http.MethodGet, "/v1/jobs/"+canceledPipeline, "").JSON(t))
		return steps["a"]["state"] == "running" && steps["b"]["state"] == "running"
	})
	e.do(http.MethodDelete, "/v1/jobs/"+canceledPipeline, "")
	e.waitState(canceledPipeline, job.StateCanceled, 30*time.Second)
	record("pipeline-canceled", canceledPipeline)
}
