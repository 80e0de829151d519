package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// unfairTaskQueue is the one task queue of the test server on which fair
// dispatch is off (devserver.Options.UnfairTaskQueues), so a test can show
// what tenants see without it. One test at a time uses it.
const unfairTaskQueue = "e2e-unfair"

// fairnessRun is what one backlog scenario measured.
type fairnessRun struct {
	// idle is the small tenant's queue wait (submission to start of the
	// work) on the idle queue, before the backlog.
	idle time.Duration
	// waits are the small tenant's queue waits behind the backlog.
	waits []time.Duration
	// backlog is how many of the big tenant's jobs had not started when
	// the small tenant submitted; passed how many of them started before
	// the small tenant's last job did.
	backlog, passed int
}

// fairnessScenario runs, on a worker with two slots: tenant big submits
// bigJobs jobs of jobMS each, then tenant small submits smallJobs; it
// measures when small's jobs start. queue "" is a fresh (fair) task queue.
func fairnessScenario(tb testing.TB, queue string, bigJobs, smallJobs int, jobMS int) fairnessRun {
	tb.Helper()
	mark := newMarkKind()
	big, small := "big-"+fmt.Sprint(time.Now().UnixNano()), "small-"+fmt.Sprint(time.Now().UnixNano())
	e := mustStartEnv(tb, envOptions{kinds: []job.Kind{mark.kind()}, workerSlots: 2, taskQueue: queue,
		apiKeys: map[string]string{big: "key-" + big, small: "key-" + small}})
	bigAuth := []string{"Authorization", "Bearer key-" + big}
	smallAuth := []string{"Authorization", "Bearer key-" + small}
	body := fmt.Sprintf(`{"kind":"test.mark","input":{"ms":%d}}`, jobMS)
	var run fairnessRun

	sent := time.Now()
	id, _ := e.submit(body, smallAuth...)
	eventually(tb, workerRoundTrip, "the idle queue's job started", func() bool { _, ok := mark.startedAt(id); return ok })
	started, _ := mark.startedAt(id)
	run.idle = started.Sub(sent)
	e.waitStateAs(id, job.StateSucceeded, smallAuth)

	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs goErrors
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(bigJobs) {
				if _, err := submitRetrying(e, body, bigAuth...); err != nil {
					errs.add(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	errs.requireNone(tb)

	before := mark.starts()
	run.backlog = bigJobs - (before - 1)
	ids := make([]string, smallJobs)
	sentAt := make([]time.Time, smallJobs)
	for i := range ids {
		sentAt[i] = time.Now()
		id, err := submitRetrying(e, body, smallAuth...)
		require.NoError(tb, err)
		ids[i] = id
	}
	eventually(tb, time.Duration(bigJobs*jobMS)*time.Millisecond+workerRoundTrip, "the small tenant's jobs started", func() bool {
		for _, id := range ids {
			if _, ok := mark.startedAt(id); !ok {
				return false
			}
		}
		return true
	})
	last := 0
	for i, id := range ids {
		t, _ := mark.startedAt(id)
		run.waits = append(run.waits, t.Sub(sentAt[i]))
		last = max(last, mark.rank(id))
	}
	// Starts between the small tenant's submission and its last start,
	// less its own.
	run.passed = last + 1 - before - smallJobs
	return run
}

// submitRetrying submits a job as a client does: again after a 503 (a
// machine loaded by the whole suite can make Temporal miss the API's call
// deadline), up to ten times. It returns the job's id.
func submitRetrying(e *env, body string, header ...string) (string, error) {
	for attempt := 1; ; attempt++ {
		resp, err := e.send(http.MethodPost, "/v1/jobs", body, header...)
		if err != nil {
			return "", err
		}
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < 10 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			continue
		}
		var accepted struct{ ID string }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(resp.Body, &accepted) != nil || accepted.ID == "" {
			return "", fmt.Errorf("submission answered %d: %s", resp.StatusCode, resp.Body)
		}
		return accepted.ID, nil
	}
}

// With fair dispatch, a small tenant's jobs start about as soon as on an
// idle queue while a big tenant's backlog drains; without it (the same
// scenario on a task queue where the server's fairness is off), they wait
// behind the backlog. Both are run, so the test shows the mechanism.
func TestFairDispatchBetweenTenants(t *testing.T) {
	t.Parallel()
	const bigJobs, smallJobs, jobMS = 120, 4, 150
	t.Run("fair", func(t *testing.T) {
		t.Parallel()
		run := fairnessScenario(t, "", bigJobs, smallJobs, jobMS)
		t.Logf("fair: idle wait %s, waits behind a backlog of %d: %v; %d of the backlog started first", run.idle, run.backlog, run.waits, run.passed)
		require.Greater(t, run.backlog, bigJobs/2, "the backlog drained before the small tenant submitted; the scenario shows nothing")
		// Each of the small tenant's jobs waits for a slot to free (a
		// job's length) and its turn between the two keys: about one of
		// the big tenant's jobs per slot goes first. (An idle machine
		// measures waits of 0.2-0.6 s against 15 s without fairness; the
		// time bound leaves room for a loaded one.)
		require.LessOrEqual(t, run.passed, 2*smallJobs+2, "the big tenant's backlog went first")
		bound := run.idle + 5*time.Second
		for _, w := range run.waits {
			require.Less(t, w, bound, "a small tenant's job waited %s behind the backlog (idle: %s)", w, run.idle)
		}
	})
	t.Run("unfair", func(t *testing.T) {
		t.Parallel()
		run := fairnessScenario(t, unfairTaskQueue, bigJobs, smallJobs, jobMS)
		t.Logf("unfair: idle wait %s, waits behind a backlog of %d: %v; %d of the backlog started first", run.idle, run.backlog, run.waits, run.passed)
		require.Greater(t, run.backlog, bigJobs/2, "the backlog drained before the small tenant submitted; the scenario shows nothing")
		// First come, first served: the backlog (bar what was in flight)
		// goes first.
		require.Greater(t, run.passed, run.backlog*3/4, "without fairness the small tenant should wait behind the backlog")
	})
}

// A priority-1 job overtakes its own tenant's backlog of priority-3 jobs.
func TestPriorityOvertakesBacklog(t *testing.T) {
	t.Parallel()
	mark := newMarkKind()
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{mark.kind()}, workerSlots: 1})
	const backlog = 30
	for range backlog {
		_, resp := e.submit(`{"kind":"test.mark","input":{"ms":150}}`)
		require.EqualValues(t, 3, resp.JSON(t)["priority"])
	}
	before := mark.starts()
	urgent, resp := e.submit(`{"kind":"test.mark","input":{"ms":1},"priority":1}`)
	require.EqualValues(t, 1, resp.JSON(t)["priority"])
	eventually(t, backlog*time.Second, "the urgent job started", func() bool { _, ok := mark.startedAt(urgent); return ok })
	// Whatever was already handed to the worker runs first; then the
	// urgent job, ahead of the rest.
	passed := mark.rank(urgent) - before
	t.Logf("%d jobs of the backlog started before the priority-1 job (%d had started when it was submitted)", passed, before)
	require.LessOrEqual(t, passed, 3)
	require.Less(t, before+passed, backlog-5, "the backlog drained before the urgent job came; the test shows nothing")

	require.EqualValues(t, 1, e.do(http.MethodGet, "/v1/jobs/"+urgent+"?redirect=false", "").JSON(t)["priority"])
	eventually(t, 10*time.Second, "the listing shows priorities", func() bool {
		list := e.do(http.MethodGet, "/v1/jobs?limit=100", "").JSON(t)
		jobs, _ := list["jobs"].([]any)
		for _, j := range jobs {
			if m := j.(map[string]any); m["id"] == urgent {
				return m["priority"] == float64(1)
			}
		}
		return false
	})
}

// BenchmarkFairness measures, in one run, the small tenant's queue wait
// behind a big tenant's backlog with fair dispatch and without it, and the
// cost of a priority and fairness key on Temporal's start of a job against
// a plain start:
//
//	go test ./e2e -run '^$' -bench BenchmarkFairness -benchtime 1x
func BenchmarkFairness(b *testing.B) {
	for range b.N {
		for _, sc := range []struct{ name, queue string }{{"fair", ""}, {"unfair", unfairTaskQueue}} {
			run := fairnessScenario(b, sc.queue, 200, 20, 150)
			p50, p99 := percentile(run.waits, 50), percentile(run.waits, 99)
			b.Logf("%s: small tenant's queue wait behind a backlog of %d: p50 %s, p99 %s (idle queue: %s)", sc.name, run.backlog, p50, p99, run.idle)
			b.ReportMetric(float64(p50.Milliseconds()), sc.name+"-p50-ms")
			b.ReportMetric(float64(p99.Milliseconds()), sc.name+"-p99-ms")
		}
		plain, fair := startCost(b)
		b.Logf("start of a job workflow: plain %s, with priority and fairness key %s", plain, fair)
		b.ReportMetric(float64(plain.Microseconds()), "plain-start-us")
		b.ReportMetric(float64(fair.Microseconds()), "priority-fair-start-us")
	}
}

// startCost is the mean time of one start of the Job workflow, plain and
// with a priority and fairness key, on a queue no worker polls, measured
// in alternating rounds of concurrent starts so that both see the same
// load.
func startCost(b *testing.B) (plain, withPriority time.Duration) {
	e := mustStartEnv(b, envOptions{noWorker: true})
	const rounds, perRound, concurrency = 6, 200, 8
	var total [2]time.Duration
	for r := range rounds {
		for variant := range 2 {
			start := time.Now()
			var wg sync.WaitGroup
			var next atomic.Int64
			var errs goErrors
			for range concurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := next.Add(1); n <= perRound; n = next.Add(1) {
						opts := client.StartWorkflowOptions{ID: fmt.Sprintf("cost-%d-%d-%d", r, variant, n), TaskQueue: e.TaskQueue,
							TypedSearchAttributes: temporal.NewSearchAttributes(workflows.TenantKey.ValueSet(e.Tenant), workflows.KindKey.ValueSet("sleep"))}
						if variant == 1 {
							opts.Priority = temporal.Priority{PriorityKey: 3, FairnessKey: e.Tenant, FairnessWeight: 1}
						}
						if _, err := e.Temporal.ExecuteWorkflow(context.Background(), opts, workflows.JobWorkflowName, workflows.Input{Tenant: e.Tenant, Kind: "sleep"}); err != nil {
							errs.add(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			errs.requireNone(b)
			total[variant] += time.Since(start)
		}
	}
	n := time.Duration(rounds * perRound)
	return total[0] / n, total[1] / n
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}
