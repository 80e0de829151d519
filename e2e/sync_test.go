package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
)

// freshReader is a second API over e's jobs that has never seen them:
// its own engine on e's Temporal, task queue, tenant and blob storage,
// with no finished-job cache, so all it answers is read from Temporal's
// record, as GET answers on any other instance.
func (e *env) freshReader() *env {
	e.t.Helper()
	jobs := engine.New(e.Temporal, e.kinds(), engine.Config{TaskQueue: e.TaskQueue, Namespace: temporalServer.Namespace(),
		Blobs: e.Blobs, FinishedCacheSize: -1})
	api := httpapi.New(jobs, e.kinds(), httpapi.Config{Tenant: e.Tenant, EventsKeepAlive: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(api)
	e.t.Cleanup(ts.Close)
	r := *e
	r.URL = ts.URL
	return &r
}

// requireSameStatus checks that two status answers are the same to a
// client: status code, the headers a client reads, and every field of the
// body.
func requireSameStatus(tb testing.TB, want, got response) {
	tb.Helper()
	require.Equal(tb, want.StatusCode, got.StatusCode, "want %s, got %s", want.Body, got.Body)
	headers := []string{"Content-Type", "ETag", "Expires", "Cache-Control", "Retry-After"}
	if want.StatusCode == http.StatusSeeOther {
		// (A submission's 200 points at the job's status, as its 202 does.)
		headers = append(headers, "Location")
	}
	for _, h := range headers {
		require.Equal(tb, want.Header.Get(h), got.Header.Get(h), "header %s", h)
	}
	requireSameFields(tb, want.JSON(tb), got.JSON(tb))
}

func requireSameFields(tb testing.TB, want, got map[string]any) {
	tb.Helper()
	for k, v := range want {
		require.Equal(tb, v, got[k], "field %q", k)
	}
	for k := range got {
		_, ok := want[k]
		require.True(tb, ok, "field %q (%v) is in one answer only", k, got[k])
	}
}

// requireSameResult checks that two instances answer a job's result alike.
func requireSameResult(tb testing.TB, want, got *env, id string) {
	tb.Helper()
	a, b := want.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), got.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(tb, http.StatusOK, a.StatusCode, "body: %s", a.Body)
	require.Equal(tb, a.StatusCode, b.StatusCode)
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Disposition", "ETag", "Expires"} {
		require.Equal(tb, a.Header.Get(h), b.Header.Get(h), "result header %s", h)
	}
	require.Equal(tb, a.Body, b.Body)
}

func failingKind() job.Kind {
	return job.Define(job.KindSpec[struct{}]{
		Name:        "test.fail",
		Description: "Fails at once, for good (tests only).",
		InputSchema: `{"type":"object"}`,
		Plan:        func(struct{}) job.Plan { return job.Plan{Expected: time.Second, Timeout: time.Minute} },
		Run: func(context.Context, struct{}, job.Reporter) (any, error) {
			return nil, job.Permanent("test-failure", errors.New("it fails on purpose"))
		},
	})
}

// quietKind works the given milliseconds without reporting progress, so
// its status changes only when it starts and when it ends.
func quietKind() job.Kind {
	type input struct {
		MS int `json:"ms"`
	}
	return job.Define(job.KindSpec[input]{
		Name:        "test.quiet",
		Description: "Works the given milliseconds without reporting progress (tests only).",
		InputSchema: `{"type":"object","properties":{"ms":{"type":"integer","minimum":0}}}`,
		Plan: func(in input) job.Plan {
			return job.Plan{Expected: time.Duration(in.MS) * time.Millisecond, Timeout: time.Minute}
		},
		Run: func(ctx context.Context, in input, _ job.Reporter) (any, error) {
			select {
			case <-time.After(time.Duration(in.MS) * time.Millisecond):
				return map[string]int{"worked": in.MS}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	})
}

// The finished status a waiting submission, a long-poll and an event
// stream answer as the job ends (built from the workflow's close event)
// is, field by field, what a GET answers from Temporal's record on an
// instance that never saw the job; so is the result, inline (small and
// large) or from blob storage.
func TestWaitingAnswersEqualALaterRead(t *testing.T) {
	t.Parallel()
	var flaky sync.Once
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" {
			failed := false
			flaky.Do(func() { failed = true })
			if failed {
				w.WriteHeader(http.StatusServiceUnavailable) // retried: the job succeeds on attempt 2
				return
			}
		}
		size := map[string]int{"/small": 10, "/large": 40 << 10, "/blob": 300 << 10}[r.URL.Path]
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"pad":%q}`, r.URL.Path, strings.Repeat("x", size))
	}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: true, kinds: []job.Kind{failingKind()}})
	fresh := e.freshReader()

	for _, tc := range []struct{ name, body string }{
		{"sleep 0", `{"kind":"sleep","input":{"seconds":0}}`},
		{"small inline result", `{"kind":"http.request","input":{"url":"` + target.URL + `/small"}}`},
		{"large inline result", `{"kind":"http.request","input":{"url":"` + target.URL + `/large"}}`},
		{"result in blob storage", `{"kind":"http.request","input":{"url":"` + target.URL + `/blob"}}`},
		{"succeeded on a second attempt", `{"kind":"http.request","input":{"url":"` + target.URL + `/flaky"}}`},
		{"failed", `{"kind":"test.fail","input":{}}`},
		{"with priority", `{"kind":"sleep","input":{"seconds":0},"priority":1}`},
	} {
		t.Run("waiting POST "+tc.name, func(t *testing.T) {
			waited := e.do(http.MethodPost, "/v1/jobs", tc.body, "Prefer", "wait=30")
			require.Contains(t, []int{http.StatusSeeOther, http.StatusOK}, waited.StatusCode, "body: %s", waited.Body)
			id := waited.JSON(t)["id"].(string)
			if strings.Contains(tc.name, "second attempt") {
				require.EqualValues(t, 2, waited.JSON(t)["attempt"])
			}
			requireSameStatus(t, fresh.do(http.MethodGet, "/v1/jobs/"+id, ""), waited)
			if waited.StatusCode == http.StatusSeeOther {
				requireSameResult(t, fresh, e, id)
			}
		})
	}

	t.Run("long-poll", func(t *testing.T) {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
		running := e.waitState(id, job.StateRunning, workerRoundTrip)
		held := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", "Prefer", "wait=30", "If-None-Match", running.Header.Get("ETag"))
		for held.JSON(t)["state"] == "running" { // a progress report came first
			held = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", "Prefer", "wait=30", "If-None-Match", held.Header.Get("ETag"))
		}
		require.Equal(t, "succeeded", held.JSON(t)["state"])
		requireSameStatus(t, fresh.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", ""), held)
	})

	t.Run("event stream", func(t *testing.T) {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
		last := e.lastEvent(id)
		require.Equal(t, "succeeded", last["state"])
		requireSameFields(t, fresh.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t), last)
	})
}

// A waiting submission of a short job costs Temporal the start and a few
// history long-polls (closeevent.Wait: the position of the history's end,
// then one per batch of events until the close), no look-up. A long-poll
// answered on completion costs its first look-up and those long-polls,
// however long the job runs (the look-up interval here is a minute).
func TestWaitingSubmissionCallCount(t *testing.T) {
	t.Parallel()
	counter := &callCounter{calls: map[string]int{}}
	e := mustStartEnv(t, envOptions{watchInterval: time.Minute, kinds: []job.Kind{quietKind()},
		apiDialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.interceptor)}})
	// The client's first calls (its system info) are not the submission's.
	require.Equal(t, http.StatusSeeOther, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":0}}`, "Prefer", "wait=30").StatusCode)

	const n = 5
	counter.reset()
	for range n {
		resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":0}}`, "Prefer", "wait=30")
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "body: %s", resp.Body)
	}
	calls := counter.reset()
	require.Equal(t, n, calls["StartWorkflowExecution"], "calls: %v", calls)
	// The position, and at most the batch of the workflow task and the close.
	require.GreaterOrEqual(t, calls["GetWorkflowExecutionHistory"], n, "calls: %v", calls)
	require.LessOrEqual(t, calls["GetWorkflowExecutionHistory"], 3*n, "calls: %v", calls)
	require.Len(t, calls, 2, "calls: %v", calls)

	id, _ := e.submit(`{"kind":"test.quiet","input":{"ms":1500}}`)
	running := e.waitState(id, job.StateRunning, workerRoundTrip)
	counter.reset()
	held := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", "Prefer", "wait=30", "If-None-Match", running.Header.Get("ETag"))
	require.Equal(t, "succeeded", held.JSON(t)["state"])
	calls = counter.reset()
	require.Equal(t, 1, calls["DescribeWorkflowExecution"], "calls: %v", calls)
	// The position, then the batches of the activity's completion, the
	// workflow task's start and the close.
	require.GreaterOrEqual(t, calls["GetWorkflowExecutionHistory"], 2, "calls: %v", calls)
	require.LessOrEqual(t, calls["GetWorkflowExecutionHistory"], 4, "calls: %v", calls)
	require.Len(t, calls, 2, "calls: %v", calls)
	// Served from what the close event built: no further call.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").StatusCode)
	require.Empty(t, counter.reset())
}

// The end of every job reaches its waiting submission at once. Temporal's
// history long-poll filtered to the close event sleeps through a close
// that follows another event of the workflow closely (internal/closeevent),
// and a waiting submission, which makes no look-ups while it waits, would
// sit out the long-poll's 20 seconds: with that long-poll, 7 of 320
// one-second jobs submitted so, sixteen at a time, were answered 19 s after
// their end. Each answer must come within seconds of the job's end.
func TestEveryCloseReachesItsWaiter(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	const jobs, callers = 192, 16
	var (
		mu    sync.Mutex
		worst time.Duration
		slow  []string
	)
	work := make(chan int)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range work {
				resp, err := e.send(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Prefer", "wait=30")
				answered := time.Now()
				if err != nil {
					t.Errorf("waiting POST: %v", err)
					continue
				}
				var body struct {
					ID          string    `json:"id"`
					CompletedAt time.Time `json:"completedAt"`
				}
				if resp.StatusCode != http.StatusSeeOther || json.Unmarshal(resp.Body, &body) != nil || body.CompletedAt.IsZero() {
					t.Errorf("waiting POST answered %d: %s", resp.StatusCode, resp.Body)
					continue
				}
				lag := answered.Sub(body.CompletedAt)
				mu.Lock()
				worst = max(worst, lag)
				if lag > 8*time.Second {
					slow = append(slow, fmt.Sprintf("%s after %s", body.ID, lag.Round(time.Millisecond)))
				}
				mu.Unlock()
			}
		})
	}
	for i := range jobs {
		work <- i
	}
	close(work)
	wg.Wait()
	require.Empty(t, slow, "jobs whose end reached the waiting submission late (worst %s)", worst)
}

// A thousand long-polls of one running job share one watch: they cost a
// few Temporal calls in all (one look-up per interval and one close
// long-poll), not one each.
func TestThousandLongPollsCostConstantCalls(t *testing.T) {
	t.Parallel()
	counter := &callCounter{calls: map[string]int{}}
	e := mustStartEnv(t, envOptions{watchInterval: 500 * time.Millisecond,
		apiDialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.interceptor)}})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
	t.Cleanup(func() { e.do(http.MethodDelete, "/v1/jobs/"+id, "") })
	running := e.waitState(id, job.StateRunning, workerRoundTrip)

	const pollers = 1000
	hc := &http.Client{Transport: conformTo(t, &http.Transport{MaxIdleConnsPerHost: pollers}), Timeout: time.Minute}
	counter.reset()
	var wg sync.WaitGroup
	errs := make(chan error, pollers)
	for range pollers {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.URL+"/v1/jobs/"+id+"?redirect=false", nil)
			req.Header.Set("Prefer", "wait=2")
			req.Header.Set("If-None-Match", running.Header.Get("ETag"))
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
				errs <- fmt.Errorf("long-poll answered %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	calls := 0
	for _, n := range counter.reset() {
		calls += n
	}
	require.Positive(t, calls)
	require.LessOrEqual(t, calls, 30, "%d long-polls cost %d Temporal calls", pollers, calls)
}
