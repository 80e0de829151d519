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
}
