package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func syncRawWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, "syncRawNoop").Get(ctx, nil)
}

// BenchmarkSyncShortcut measures a short job's round trip through the
// synchronous shortcut (POST with Prefer: wait of a sleep 0 job, answered
// 303) beside the plain SDK's ExecuteWorkflow + Get of a workflow with one
// no-op activity on the same server, in alternating rounds, and prints
// p50/p99 of both and their ratio. Run it with:
//
//	go test -run '^$' -bench SyncShortcut -benchtime 1x ./e2e/
func BenchmarkSyncShortcut(b *testing.B) {
	e := mustStartEnv(b, envOptions{})
	e.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	rawQueue := e.TaskQueue + "-raw"
	w := worker.New(e.Temporal, rawQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(syncRawWorkflow, workflow.RegisterOptions{Name: "syncRaw"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "syncRawNoop"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(w.Stop)
	ctx := context.Background()
	jobgate := func() error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/v1/jobs", strings.NewReader(`{"kind":"sleep","input":{"seconds":0}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Prefer", "wait=5")
		resp, err := e.HTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("answered %d, not 303", resp.StatusCode)
		}
		return nil
	}
	raw := func() error {
		run, err := e.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: uuid.NewString(), TaskQueue: rawQueue, EnableEagerStart: true}, "syncRaw")
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}
	for b.Loop() {
		for _, conc := range []int{1, 16} {
			var jg, rw []time.Duration
			for round := range 6 {
				// a b b a: neither side always goes first.
				order := []bool{true, false, false, true}
				for _, isJobgate := range order[round%2*2 : round%2*2+2] {
					f, into := raw, &rw
					if isJobgate {
						f, into = jobgate, &jg
					}
					*into = append(*into, measure(b, conc, 10, f)...)
				}
			}
			pj50, pj99 := percentile(jg, 50), percentile(jg, 99)
			pr50, pr99 := percentile(rw, 50), percentile(rw, 99)
			b.ReportMetric(ms(pj50), fmt.Sprintf("c%d-jobgate-p50-ms", conc))
			b.ReportMetric(ms(pj99), fmt.Sprintf("c%d-jobgate-p99-ms", conc))
			b.ReportMetric(ms(pr50), fmt.Sprintf("c%d-raw-p50-ms", conc))
			b.ReportMetric(ms(pr99), fmt.Sprintf("c%d-raw-p99-ms", conc))
			b.ReportMetric(float64(pj50)/float64(pr50), fmt.Sprintf("c%d-p50-jobgate/raw", conc))
			b.ReportMetric(float64(pj99)/float64(pr99), fmt.Sprintf("c%d-p99-jobgate/raw", conc))
		}
	}
}

// measure runs f perCaller times on each of conc callers and returns each
// call's latency.
func measure(b *testing.B, conc, perCaller int, f func() error) []time.Duration {
	var mu sync.Mutex
	var out []time.Duration
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perCaller {
				start := time.Now()
				if err := f(); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(start)
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
