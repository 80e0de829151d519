package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// chaosResult is the outcome of one chaos run.
type chaosResult struct {
	Name string
	// Keys is how many Idempotency-Keys were submitted.
	Keys int
	// Responses202 counts every 202 returned, first answers and replays.
	Responses202 int
	// Replayed counts the 202s that were replays of an earlier
	// submission of the key (Idempotent-Replayed): the first answer was
	// lost to the kill, the job was not.
	Replayed int
	// Accepted is how many distinct jobs the 202s named.
	Accepted int
	// Completed jobs have exactly one workflow execution, completed.
	Completed int
	// Lost are accepted jobs with no execution, or none that completed.
	Lost int
	// Duplicated are accepted jobs with more than one execution, plus keys
	// answered with two different job IDs.
	Duplicated int
	// Orphans are Job workflows no 202 named (a key abandoned mid-retry).
	Orphans int
	// Retried jobs ended on an attempt after the first: the kill hit them.
	Retried int
	// Abandoned keys got no 202 within the retry bound.
	Abandoned int
	// Downtime is from the SIGKILL until the restarted process was ready.
	Downtime time.Duration
}

// chaosJobSeconds is how long each chaos job sleeps: long enough that a
// kill catches many mid-way.
const chaosJobSeconds = 2

// keyRetryBound is how long one Idempotency-Key is retried.
const keyRetryBound = 3 * time.Minute

// chaosLoad submits sleep jobs with Idempotency-Keys at a steady rate and
// retries every key until it gets a 202, as a careful client does.
type chaosLoad struct {
	a      *api
	prefix string

	mu        sync.Mutex
	ids       map[string]string // key -> job ID
	n202      int
	replayed  int
	conflicts int
	abandoned int
	keys      int
}

// run submits about rate new keys per second, conc at a time, until stop
// is closed; then it finishes the keys in flight and returns.
func (l *chaosLoad) run(stop <-chan struct{}, rate float64, conc int) {
	keys := make(chan int)
	go func() {
		defer close(keys)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case <-stop:
				return
			case keys <- i:
			}
		}
	}()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				l.submit(l.prefix + "-" + strconv.Itoa(i))
			}
		}()
	}
	wg.Wait()
}

// submit POSTs one key until it gets a 202, a final refusal, or the bound.
func (l *chaosLoad) submit(key string) {
	l.mu.Lock()
	l.keys++
	l.mu.Unlock()
	deadline := time.Now().Add(keyRetryBound)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, replayed, err := l.a.submitKeyed(ctx, sleepBody(chaosJobSeconds), key)
		cancel()
		if err == nil {
			l.mu.Lock()
			l.n202++
			if replayed {
				l.replayed++
			}
			if prev, ok := l.ids[key]; ok && prev != id {
				l.conflicts++
			}
			l.ids[key] = id
			l.mu.Unlock()
			return
		}
		var he *httpError
		if errors.As(err, &he) && he.Code >= 400 && he.Code < 500 && he.Code != http.StatusTooManyRequests {
			logf("chaos: key %s refused for good: %v", key, err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.mu.Lock()
	l.abandoned++
	l.mu.Unlock()
}

// runChaos kills the whole all-in-one process, then (in a second
// topology) a separate worker process, under load.
func runChaos(ctx context.Context, o options, bin, dir string, res *results) error {
	var errs []error
	for _, killWorker := range []bool{false, true} {
		r, err := chaosOnce(ctx, o, bin, dir, killWorker)
		if err != nil {
			logf("chaos %s: %v", r.Name, err)
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
		if r.Keys > 0 {
			res.Chaos = append(res.Chaos, r)
		}
	}
	return errors.Join(errs...)
}

func chaosOnce(ctx context.Context, o options, bin, dir string, killWorker bool) (chaosResult, error) {
	res := chaosResult{Name: "all-in-one process (worker + embedded Temporal + API)"}
	sub := filepath.Join(dir, "all-in-one")
	if killWorker {
		res.Name = "worker process (beside an all-in-one)"
		sub = filepath.Join(dir, "worker")
	}
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return res, err
	}
	env := []string{"JOBGATE_ROLE=all"}
	if killWorker {
		// The all-in-one runs few jobs itself, so that most are on the
		// worker when it is killed.
		env = append(env, "JOBGATE_WORKER_CONCURRENCY=2")
	}
	all, err := newProc(procSpec{Name: "chaos-all", Bin: bin, DataDir: filepath.Join(sub, "data"), LogDir: sub, Env: env})
	if err != nil {
		return res, err
	}
	logf("chaos (%s): starting", res.Name)
	if err := all.startFirst(ctx, "/readyz", 3*time.Minute); err != nil {
		return res, err
	}
	defer func() { _ = all.stop(60 * time.Second) }()
	victim := all
	if killWorker {
		w, err := newProc(procSpec{Name: "chaos-worker", Bin: bin, DataDir: filepath.Join(sub, "worker-data"), LogDir: sub,
			Env: []string{"JOBGATE_ROLE=worker", "JOBGATE_TEMPORAL_ADDRESS=" + all.TemporalAddress()}})
		if err != nil {
			return res, err
		}
		if err := w.startFirst(ctx, "/readyz", time.Minute); err != nil {
			return res, err
		}
		defer func() { _ = w.stop(30 * time.Second) }()
		victim = w
	}

	load := &chaosLoad{a: newAPI(all.HTTP, 64), prefix: fmt.Sprintf("chaos-%d", time.Now().UnixNano()), ids: map[string]string{}}
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		load.run(stopLoad, o.chaosRate, 16)
		close(loadDone)
	}()
	sleepCtx(ctx, o.chaosKill)
	logf("chaos (%s): SIGKILL %s", res.Name, victim.name)
	killed := time.Now()
	victim.kill()
	sleepCtx(ctx, time.Second)
	if err := victim.start(ctx, "/readyz", 3*time.Minute); err != nil {
		close(stopLoad)
		<-loadDone
		return res, fmt.Errorf("restart after SIGKILL: %w", err)
	}
	res.Downtime = time.Since(killed)
	logf("chaos (%s): %s back after %s", res.Name, victim.name, res.Downtime.Round(100*time.Millisecond))
	sleepCtx(ctx, o.chaosAfter)
	close(stopLoad)
	<-loadDone

	load.mu.Lock()
	res.Keys, res.Responses202, res.Replayed, res.Accepted, res.Abandoned = load.keys, load.n202, load.replayed, len(load.ids), load.abandoned
	res.Duplicated = load.conflicts
	ids := make([]string, 0, len(load.ids))
	for _, id := range load.ids {
		ids = append(ids, id)
	}
	load.mu.Unlock()
	logf("chaos (%s): %d keys, %d accepted; waiting for every job to end", res.Name, res.Keys, res.Accepted)

	final := pollTerminal(ctx, load.a, ids, 4*time.Minute)
	for _, s := range final {
		if s.Attempt > 1 {
			res.Retried++
		}
	}

	c, err := dial(ctx, all.TemporalAddress())
	if err != nil {
		return res, err
	}
	defer c.Close()
	execs, err := list(ctx, c, "WorkflowType = 'Job'")
	if err != nil {
		return res, err
	}
	byID := map[string][]execution{}
	for _, e := range execs {
		byID[e.ID] = append(byID[e.ID], e)
	}
	accepted := map[string]bool{}
	for _, id := range ids {
		accepted[id] = true
		switch e := byID[id]; {
		case len(e) == 0:
			res.Lost++
		case len(e) > 1:
			res.Duplicated++
		case e[0].Status != "Completed" || final[id].State != "succeeded":
			res.Lost++
		default:
			res.Completed++
		}
	}
	for id := range byID {
		if !accepted[id] {
			res.Orphans++
		}
	}
	logf("chaos (%s): %d accepted, %d completed, %d lost, %d duplicated, %d retried, %d orphans, %d abandoned",
		res.Name, res.Accepted, res.Completed, res.Lost, res.Duplicated, res.Retried, res.Orphans, res.Abandoned)
	if res.Abandoned > 0 {
		return res, fmt.Errorf("%d keys got no 202 within %s", res.Abandoned, keyRetryBound)
	}
	return res, nil
}

// pollTerminal reads every job until it is terminal or timeout passes and
// returns the last status read of each.
func pollTerminal(ctx context.Context, a *api, ids []string, timeout time.Duration) map[string]status {
	final := make(map[string]status, len(ids))
	pending := append([]string(nil), ids...)
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		var mu sync.Mutex
		runLoad(ctx, loadSpec{Concurrency: 8, Duration: time.Minute, MaxOps: len(pending)}, 10*time.Second, func(ctx context.Context, i int) error {
			st, err := a.get(ctx, pending[i])
			if err == nil {
				mu.Lock()
				final[pending[i]] = st
				mu.Unlock()
			}
			return err
		})
		var still []string
		for _, id := range pending {
			if !final[id].terminal() {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			sleepCtx(ctx, time.Second)
		}
	}
	return final
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
