package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/jobgate/jobgate/job"
)

// itemServer is a local HTTP server that batch items call at /item/{i}: it
// counts the requests of each item, answers after delay with a small JSON
// body, and notes when requests start and when one is aborted.
type itemServer struct {
	*httptest.Server
	delay time.Duration

	mu        sync.Mutex
	calls     map[int]int
	succeeded map[int]int // answers the client read completely
	starts    []time.Time
	aborts    []time.Time
}

func mustStartItemServer(tb testing.TB, delay time.Duration) *itemServer {
	tb.Helper()
	s := &itemServer{delay: delay, calls: map[int]int{}, succeeded: map[int]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *itemServer) serve(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/item/"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.calls[i]++
	s.starts = append(s.starts, time.Now())
	s.mu.Unlock()
	t := time.NewTimer(s.delay)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		s.mu.Lock()
		s.aborts = append(s.aborts, time.Now())
		s.mu.Unlock()
		return
	case <-t.C:
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"item":%d}`, i)
	s.mu.Lock()
	s.succeeded[i]++
	s.mu.Unlock()
}

func (s *itemServer) snapshot() (calls, succeeded map[int]int, starts, aborts []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.calls), maps.Clone(s.succeeded), slices.Clone(s.starts), slices.Clone(s.aborts)
}

// batchInput is a batch.http submission of n GETs of the item server.
func batchInput(tb testing.TB, url string, n, concurrency int) string {
	tb.Helper()
	reqs := make([]map[string]any, n)
	for i := range reqs {
		reqs[i] = map[string]any{"url": fmt.Sprintf("%s/item/%d", url, i)}
	}
	return mustJSON(tb, map[string]any{"kind": "batch.http", "input": map[string]any{"requests": reqs, "concurrency": concurrency}})
}

type batchResult struct {
	Items []struct {
		Index    int             `json:"index"`
		Status   int             `json:"status"`
		Body     json.RawMessage `json:"body"`
		Error    *struct{ Type, Message string }
		Attempts int `json:"attempts"`
	} `json:"items"`
	Total, Succeeded, Failed int
}

// A 200-item batch.http job runs with bounded concurrency, its progress
// rises to 100% with the items done, and its result has every item's
// outcome in order.
func TestBatchHTTP200Items(t *testing.T) {
	t.Parallel()
	// Slow enough that the run takes seconds and progress is seen between
	// 0 and 100%.
	target := mustStartItemServer(t, 200*time.Millisecond)
	var inFlight, peak atomic.Int32
	inner := target.Config.Handler
	target.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		defer inFlight.Add(-1)
		inner.ServeHTTP(w, r)
	})
	e := mustStartEnv(t, envOptions{allowPrivate: true})

	id, _ := e.submit(batchInput(t, target.URL, 200, 8))
	var percents []float64
	var messages []string
	eventually(t, 60*time.Second, "batch succeeded", func() bool {
		body := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(t)
		if p, ok := body["progress"].(map[string]any); ok {
			if pct, ok := p["percent"].(float64); ok {
				percents = append(percents, pct)
				messages = append(messages, p["message"].(string))
				require.EqualValues(t, 200, p["total"])
			}
		}
		return body["state"] == string(job.StateSucceeded)
	})
	require.True(t, slices.IsSorted(percents), "progress never goes back: %v", percents)
	require.Equal(t, 100.0, percents[len(percents)-1])
	require.True(t, slices.ContainsFunc(percents, func(p float64) bool { return p > 0 && p < 100 }), "progress seen between 0 and 100: %v", percents)
	require.Contains(t, messages[len(messages)-1], "sent 200 of 200")
	require.LessOrEqual(t, peak.Load(), int32(8), "concurrency bounded")
	require.Greater(t, peak.Load(), int32(1), "requests ran concurrently")

	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var res batchResult
	require.NoError(t, json.Unmarshal(resp.Body, &res))
	require.Equal(t, 200, res.Total)
	require.Equal(t, 200, res.Succeeded)
	require.Zero(t, res.Failed)
	require.Len(t, res.Items, 200)
	for i, item := range res.Items {
		require.Equal(t, i, item.Index)
		require.Equal(t, 200, item.Status)
		require.JSONEq(t, fmt.Sprintf(`{"item":%d}`, i), string(item.Body))
		require.Equal(t, 1, item.Attempts)
		require.Nil(t, item.Error)
	}
	calls, _, _, _ := target.snapshot()
	require.Len(t, calls, 200)
	for i, n := range calls {
		require.Equal(t, 1, n, "item %d sent once", i)
	}
}

// A worker that stops mid-batch hands the batch over: a new worker
// resumes it from the checkpoints, and no item that had succeeded is sent
// again.
func TestBatchHTTPResumesOnAnotherWorker(t *testing.T) {
	t.Parallel()
	target := mustStartItemServer(t, 300*time.Millisecond)
	e := mustStartEnv(t, envOptions{allowPrivate: true, noWorker: true})
	first := e.startWorker()

	id, _ := e.submit(batchInput(t, target.URL, 60, 4))
	eventually(t, 30*time.Second, "a third of the batch sent", func() bool {
		_, succeeded, _, _ := target.snapshot()
		return len(succeeded) >= 20
	})
	first.Stop()
	_, atStop, _, _ := target.snapshot()
	require.Less(t, len(atStop), 60, "stopped mid-batch")
	e.startWorker()

	done := e.waitState(id, job.StateSucceeded, 60*time.Second).JSON(t)
	require.GreaterOrEqual(t, done["attempt"], 2.0, "a second attempt finished the batch")
	calls, succeeded, _, _ := target.snapshot()
	require.Len(t, succeeded, 60)
	for i := range 60 {
		require.Equal(t, 1, succeeded[i], "item %d succeeded once", i)
		if atStop[i] > 0 {
			require.Equal(t, 1, calls[i], "item %d had succeeded before the stop and was not sent again", i)
		}
	}
	var res batchResult
	require.NoError(t, json.Unmarshal(e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").Body, &res))
	require.Equal(t, 60, res.Succeeded)
	for i, item := range res.Items {
		require.JSONEq(t, fmt.Sprintf(`{"item":%d}`, i), string(item.Body))
	}
	// The activity ran twice: the stopped attempt and the one that resumed.
	attempts := 0
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			attempts = int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())
		}
	}
	require.GreaterOrEqual(t, attempts, 2)
	// The checkpoints go once the batch has ended.
	requireScratchDeleted(t, e, id)
}

// requireScratchDeleted waits for the job's workflow to delete the job's
// scratch data (batch checkpoints) after the job ended.
func requireScratchDeleted(t *testing.T, e *env, id string) {
	t.Helper()
	eventually(t, 15*time.Second, "scratch data of "+id+" deleted", func() bool {
		keys, err := e.Blobs.List(context.Background(), "work/"+id+"/")
		require.NoError(t, err)
		return len(keys) == 0
	})
}

// CancelBound is the documented bound on how long a DELETE takes to reach
// running work: heartbeats carry it back about once a second
// (activities.HeartbeatInterval); the bound leaves room for a loaded
// machine.
const CancelBound = 15 * time.Second

// A DELETE stops a running batch: the calls in flight are aborted when the
// activity sees the cancellation, within the heartbeat bound, no call
// starts after that, and the job ends canceled without a retry.
func TestBatchHTTPCancelStopsCalls(t *testing.T) {
	t.Parallel()
	target := mustStartItemServer(t, 300*time.Millisecond)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(batchInput(t, target.URL, 200, 4))
	eventually(t, 30*time.Second, "some items done", func() bool {
		_, succeeded, _, _ := target.snapshot()
		return len(succeeded) >= 8
	})

	deleted := time.Now()
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
	body := e.waitState(id, job.StateCanceled, 15*time.Second).JSON(t)
	require.EqualValues(t, 1, body["attempt"], "never retried")

	// The item server notes an abort when it sees the connection close,
	// which can trail the job's end.
	var aborts []time.Time
	eventually(t, 10*time.Second, "the calls in flight were aborted", func() bool {
		_, _, _, aborts = target.snapshot()
		return len(aborts) > 0
	})
	observed := slices.MinFunc(aborts, time.Time.Compare)
	require.Less(t, observed.Sub(deleted), CancelBound, "cancellation reached the work within the bound")
	// The workflow deletes the checkpoints after its activity returned,
	// so the item server's record then also holds any call a batch that
	// went on after its cancellation would have made.
	requireScratchDeleted(t, e, id)
	calls, _, starts, _ := target.snapshot()
	t.Logf("DELETE to calls aborted: %s; %d of 200 items called", observed.Sub(deleted), len(calls))
	// A call can start while another's abort is being noted; allow for
	// the scheduling between the two.
	for _, s := range starts {
		require.False(t, s.After(observed.Add(200*time.Millisecond)), "no call started after the cancellation was observed")
	}
	require.Less(t, len(calls), 200, "the batch stopped")
}

// Batch items to loopback are refused at connect time when private targets
// are not allowed: each item fails with destination-refused, unsent.
func TestBatchHTTPRefusesLoopback(t *testing.T) {
	t.Parallel()
	target := mustStartItemServer(t, 0)
	e := mustStartEnv(t, envOptions{allowPrivate: false})
	url := "http://localhost:" + target.URL[len("http://127.0.0.1:"):]
	id, _ := e.submit(batchInput(t, url, 2, 2))
	e.waitState(id, job.StateSucceeded, 15*time.Second)
	var res batchResult
	require.NoError(t, json.Unmarshal(e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").Body, &res))
	require.Equal(t, 2, res.Failed)
	for _, item := range res.Items {
		require.NotNil(t, item.Error)
		require.Equal(t, "destination-refused", item.Error.Type)
		require.Contains(t, item.Error.Message, "not a public address")
		require.Equal(t, 1, item.Attempts, "a refusal is not retried")
	}
	calls, _, _, _ := target.snapshot()
	require.Empty(t, calls)
}

// batch.http's input is checked against its schema before acceptance.
func TestBatchHTTPInputValidated(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	for name, tc := range map[string]struct{ input, field string }{
		"no requests":         {`{"requests":[]}`, "/input/requests"},
		"concurrency too big": {`{"requests":[{"url":"https://example.com"}],"concurrency":65}`, "/input/concurrency"},
		"bad item URL":        {`{"requests":[{"url":"https://example.com"},{"url":"ftp://x"}]}`, "/input/requests/1/url"},
		"unknown item field":  {`{"requests":[{"url":"https://example.com","verb":"GET"}]}`, "/input/requests/0/verb"},
	} {
		t.Run(name, func(t *testing.T) {
			p := requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"batch.http","input":`+tc.input+`}`), http.StatusUnprocessableEntity, "invalid-input")
			fields := []string{}
			for _, fe := range p["errors"].([]any) {
				fields = append(fields, fe.(map[string]any)["field"].(string))
			}
			require.Contains(t, fields, tc.field)
		})
	}
}
