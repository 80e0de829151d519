package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/jobgate/jobgate/job"
)

// recorded counts what a job's workflow history holds.
type recorded struct {
	events, upserts, activities, localActivities, versionMarkers int
}

func (e *env) recorded(id string) recorded {
	e.t.Helper()
	var r recorded
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		r.events++
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			r.upserts++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			r.activities++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			switch ev.GetMarkerRecordedEventAttributes().GetMarkerName() {
			case "LocalActivity":
				r.localActivities++
			case "Version":
				r.versionMarkers++
			}
		}
	}
	return r
}

// listed reports whether the listing of state holds job id.
func (e *env) listed(state job.State, id string) bool {
	e.t.Helper()
	resp := e.do(http.MethodGet, "/v1/jobs?limit=100&state="+string(state), "")
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
	jobs, _ := resp.JSON(e.t)["jobs"].([]any)
	for _, j := range jobs {
		if j.(map[string]any)["id"] == id {
			require.Equal(e.t, string(state), j.(map[string]any)["state"], "listed state of %s", id)
			return true
		}
	}
	return false
}

// A job's history carries only what the API cannot derive: no version
// marker, and no terminal JobState upsert (the closed workflow's status
// says succeeded, failed or canceled, and listings by those states query
// it); a sleep-0 job runs as a local activity, with no activity task and
// no upsert at all. What a user sees stays: status, startedAt, attempt,
// result, and listings by every state.
func TestJobHistoryCarriesOnlyWhatTheAPICannotDerive(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true})

	instant, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	short, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	failed, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": target.URL, "maxAttempts": 1}}))
	long, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)

	st := e.waitState(instant, job.StateSucceeded, workerRoundTrip).JSON(t)
	require.NotNil(t, st["startedAt"], "a local activity's job has a start: %v", st)
	require.EqualValues(t, 1, st["attempt"])
	require.NotNil(t, st["completedAt"])
	res := e.do(http.MethodGet, "/v1/jobs/"+instant+"/result", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"slept":0}`, string(res.Body))
	require.Equal(t, recorded{events: 6, localActivities: 1}, e.recorded(instant),
		"started, workflow task scheduled/started/completed, the local activity's marker, completed")

	e.waitState(short, job.StateSucceeded, workerRoundTrip)
	require.Equal(t, recorded{events: 12, upserts: 1, activities: 1}, e.recorded(short),
		"the raw workflow + activity's 11 events and the running upsert")

	e.waitState(failed, job.StateFailed, workerRoundTrip)
	require.Equal(t, 1, e.recorded(failed).upserts, "running only")

	e.waitState(long, job.StateRunning, workerRoundTrip)
	require.True(t, e.listed(job.StateRunning, long))
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+long, "").StatusCode)
	e.waitState(long, job.StateCanceled, workerRoundTrip)
	require.Equal(t, 2, e.recorded(long).upserts, "running and canceling")

	// Terminal states are listed from the closed workflow's status.
	eventually(t, 10*time.Second, "finished jobs listed by state", func() bool {
		return e.listed(job.StateSucceeded, instant) && e.listed(job.StateSucceeded, short) &&
			e.listed(job.StateFailed, failed) && e.listed(job.StateCanceled, long)
	})
	for _, id := range []string{instant, short, failed, long} {
		require.False(t, e.listed(job.StateRunning, id), "finished job %s listed running", id)
		require.False(t, e.listed(job.StateQueued, id), "finished job %s listed queued", id)
	}
}
