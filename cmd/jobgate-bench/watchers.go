package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The watchers phase: what open event streams cost Temporal and other
// tenants. A tenant opens 1, 100 and 500 SSE streams, one per running
// sleep job, while another tenant reads its own running jobs at a steady
// pace; each step reports the all-in-one's Describe calls per second (the
// SDK's temporal_request metric), the watcher's share of them, the other
// tenant's GET latency and the progress events the streams received,
// beside the baseline with no stream open on the same running jobs.

// watchOptions are the watchers phase's flags.
type watchOptions struct {
	streams []int
	window  time.Duration
}

// watchFlags registers the watchers phase's flags on fs.
func watchFlags(fs *flag.FlagSet, o *watchOptions) {
	fs.Func("watchers", "watchers phase: open SSE streams (one per running job) of each step, after a step with none (default 1,100,500)", func(s string) error {
		v, err := parseInts(s)
		o.streams = v
		return err
	})
	fs.DurationVar(&o.window, "watch-duration", 8*time.Second, "watchers phase: window of each step")
}

// watchQuick sets the watchers phase's quick-run defaults of the flags
// not given.
func watchQuick(o *watchOptions, set map[string]bool) {
	if !set["watchers"] {
		o.streams = []int{1, 40}
	}
	if !set["watch-duration"] {
		o.window = 3 * time.Second
	}
}

// watchersRow is one step of the watchers phase.
type watchersRow struct {
	Streams int
	// Describes is the all-in-one's DescribeWorkflowExecution calls per
	// second; Watch the watcher's share: those above the step with no
	// stream (the other tenant's GETs, at the same pace).
	Describes, Watch float64
	// Get is the other tenant's GETs of its running job.
	Get stats
	// Events is the status events per second all streams received.
	Events float64
}

const (
	watchTenant = "watchers"
	otherTenant = "other"
	// otherJobs are the other tenant's running jobs, read in turn.
	otherJobs = 2
	// otherRate is the other tenant's GETs per second: a steady client,
	// whose latency is measured, not a load.
	otherRate = 20
)

func benchKey(tenant string) string { return "key-" + tenant }

func keyEntry(tenant string) string {
	h := sha256.Sum256([]byte(benchKey(tenant)))
	return tenant + ":" + hex.EncodeToString(h[:])
}

// runWatchers runs the watchers phase on a fresh all-in-one.
func runWatchers(ctx context.Context, o options, bin, dir string, r *results) error {
	steps := append([]int{0}, o.watch.streams...)
	most := 0
	for _, n := range steps {
		most = max(most, n)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	p, err := newProc(procSpec{Name: "watchers", Bin: bin, DataDir: filepath.Join(dir, "data"), LogDir: dir, Env: []string{
		"JOBGATE_ROLE=all", "JOBGATE_EMBEDDED_STORE=memory",
		"JOBGATE_API_KEYS=" + keyEntry(watchTenant) + "," + keyEntry(otherTenant),
		// The watching tenant may open all its streams; the rest is the
		// defaults (JOBGATE_WATCH_RATE, JOBGATE_WATCH_MAX_INTERVAL).
		"JOBGATE_TENANT_LIMITS=" + watchTenant + ":streams=100000",
		"JOBGATE_WORKER_CONCURRENCY=" + strconv.Itoa(most+50),
		"JOBGATE_METRICS_ADDR=127.0.0.1:" + strconv.Itoa(metricsPort),
	}})
	if err != nil {
		return err
	}
	logf("watchers: starting an all-in-one jobgate (memory store)")
	if err := p.startFirst(ctx, "/readyz", 3*time.Minute); err != nil {
		return err
	}
	defer func() {
		if err := p.stop(30 * time.Second); err != nil {
			logf("%v", err)
		}
	}()
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"
	watcher := newKeyedAPI(p.HTTP, 64, watchTenant)
	other := newKeyedAPI(p.HTTP, 16, otherTenant)

	logf("watchers: starting %d long sleep jobs of tenant %s, %d of tenant %s", most, watchTenant, otherJobs, otherTenant)
	ids, err := submitRunning(ctx, watcher, most)
	if err != nil {
		return err
	}
	otherIDs, err := submitRunning(ctx, other, otherJobs)
	if err != nil {
		return err
	}

	streams := &streamSet{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}, base: p.HTTP}
	defer streams.close()
	for _, n := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := streams.openUpTo(ctx, ids, n); err != nil {
			return err
		}
		// Let the streams' first look-ups pass before measuring.
		time.Sleep(3 * time.Second)
		row, err := measureWatchers(ctx, o.watch.window, metricsURL, other, otherIDs, streams)
		if err != nil {
			return err
		}
		row.Streams = n
		if len(r.Watchers) > 0 {
			row.Watch = max(0, row.Describes-r.Watchers[0].Describes)
		}
		logf("watchers: %d streams: Describe %.1f/s (watcher %.1f/s), other tenant's GET p50 %s p90 %s, %.1f events/s",
			n, row.Describes, row.Watch, ms(row.Get.P(50)), ms(row.Get.P(90)), row.Events)
		r.Watchers = append(r.Watchers, row)
	}
	return nil
}

// newKeyedAPI is an api client that authenticates as tenant.
func newKeyedAPI(base string, conns int, tenant string) *keyedAPI {
	return &keyedAPI{api: newAPI(base, conns), auth: map[string]string{"Authorization": "Bearer " + benchKey(tenant)}}
}

type keyedAPI struct {
	*api
	auth map[string]string
}

// submitAs submits body with Idempotency-Key key and returns the job's id.
func (a *keyedAPI) submitAs(ctx context.Context, body, key string) (string, error) {
	h := map[string]string{"Idempotency-Key": key}
	for k, v := range a.auth {
		h[k] = v
	}
	s, _, err := a.do(ctx, http.MethodPost, "/v1/jobs", body, h, http.StatusAccepted)
	if err == nil && s.ID == "" {
		err = fmt.Errorf("202 without a job id")
	}
	return s.ID, err
}

// submitRunning submits n sleep jobs that outlast the phase and waits
// until all of them run.
func submitRunning(ctx context.Context, a *keyedAPI, n int) ([]string, error) {
	ids := make([]string, n)
	run := time.Now().UnixNano()
	st := runLoad(ctx, loadSpec{Concurrency: 8, MaxOps: n, Duration: 5 * time.Minute}, callTimeout, func(ctx context.Context, i int) error {
		// A server busy starting hundreds of jobs may answer 503: the
		// same key again is the same job.
		key := fmt.Sprintf("watchers-%d-%d", run, i)
		var err error
		for range 10 {
			if ids[i], err = a.submitAs(ctx, sleepBody(1800), key); err == nil || ctx.Err() != nil {
				return err
			}
			time.Sleep(time.Second)
		}
		return err
	})
	if st.Errors > 0 {
		return nil, fmt.Errorf("submit sleep jobs: %d of %d failed: %v", st.Errors, n, st.FirstError)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for _, id := range ids {
		for {
			s, _, err := a.do(ctx, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", a.auth, http.StatusOK)
			if err == nil && s.State == "running" {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("job %s not running after 3 minutes (state %q, %v)", id, s.State, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return ids, nil
}

// measureWatchers measures one step: the other tenant's GETs for window,
// and the Describe calls and stream events meanwhile.
func measureWatchers(ctx context.Context, window time.Duration, metricsURL string, other *keyedAPI, otherIDs []string, streams *streamSet) (watchersRow, error) {
	d0, t0, err := freshDescribeCalls(ctx, metricsURL)
	if err != nil {
		return watchersRow{}, err
	}
	e0 := streams.events.Load()
	get := pacedGets(ctx, other, otherIDs, window)
	d1, t1, err := freshDescribeCalls(ctx, metricsURL)
	if err != nil {
		return watchersRow{}, err
	}
	events := streams.events.Load() - e0
	if get.Errors > 0 {
		// A figure of the step (an overloaded server answers 503), not
		// a failure of the bench.
		logf("watchers: %d of the other tenant's GETs failed, first: %v", get.Errors, get.FirstError)
	}
	if err := streams.failure(); err != nil {
		logf("watchers: %v", err)
	}
	secs := t1.Sub(t0).Seconds()
	return watchersRow{Describes: (d1 - d0) / secs, Get: get, Events: float64(events) / secs}, nil
}

// pacedGets reads the other tenant's running jobs otherRate times a second
// for window, each GET on its own so that a slow answer does not slow the
// pace.
func pacedGets(ctx context.Context, other *keyedAPI, ids []string, window time.Duration) stats {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / otherRate)
	defer tick.Stop()
	start := time.Now()
	for i := 0; time.Since(start) < window && ctx.Err() == nil; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			began := time.Now()
			_, _, err := other.do(cctx, http.MethodGet, "/v1/jobs/"+ids[i%len(ids)]+"?redirect=false", "", other.auth, http.StatusOK)
			d := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			lat = append(lat, d)
		}()
	}
	wg.Wait()
	return newStats(lat, errs, time.Since(start), firstErr)
}

// freshDescribeCalls is describeCalls read just after the SDK reported its
// metrics (it does once a second), with when that was: the counter is
// polled until it moves. (The other tenant's GETs and the watchers keep
// it moving; after 3 seconds still it is taken as it is.)
func freshDescribeCalls(ctx context.Context, metricsURL string) (float64, time.Time, error) {
	first, err := describeCalls(ctx, metricsURL)
	if err != nil {
		return 0, time.Time{}, err
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		v, err := describeCalls(ctx, metricsURL)
		if err != nil {
			return 0, time.Time{}, err
		}
		if v != first {
			return v, time.Now(), nil
		}
	}
	return first, time.Now(), nil
}

// describeCalls reads the DescribeWorkflowExecution calls the process's
// Temporal client made so far from its metrics (temporal_request by
// operation).
func describeCalls(ctx context.Context, metricsURL string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read metrics: %s", resp.Status)
	}
	return sumCounter(resp.Body, "temporal_request", `operation="DescribeWorkflowExecution"`)
}

// sumCounter sums the samples of the Prometheus counter name (with or
// without the _total suffix) whose labels contain label.
func sumCounter(rd io.Reader, name, label string) (float64, error) {
	sum, found := 0.0, false
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		metric, rest, ok := strings.Cut(line, "{")
		if !ok || (metric != name && metric != name+"_total") {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, label) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum, found = sum+v, true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		// No call yet: the counter appears with the first.
		return 0, nil
	}
	return sum, nil
}

// streamSet is the watching tenant's open event streams.
type streamSet struct {
	hc     *http.Client
	base   string
	events atomic.Int64

	mu      sync.Mutex
	cancels []context.CancelFunc
	err     error
	wg      sync.WaitGroup
}

// openUpTo opens streams on ids[len(open):n], each waited for until its
// first event.
func (s *streamSet) openUpTo(ctx context.Context, ids []string, n int) error {
	s.mu.Lock()
	have := len(s.cancels)
	s.mu.Unlock()
	if n <= have {
		return nil
	}
	logf("watchers: opening %d more event streams", n-have)
	st := runLoad(ctx, loadSpec{Concurrency: 8, MaxOps: n - have, Duration: 5 * time.Minute}, callTimeout, func(ctx context.Context, i int) error {
		// An overloaded server may answer 503 (Retry-After): try again.
		var err error
		for range 10 {
			if err = s.open(ids[have+i]); err == nil || ctx.Err() != nil {
				return err
			}
			time.Sleep(time.Second)
		}
		return err
	})
	if st.Errors > 0 {
		return fmt.Errorf("open event streams: %d of %d failed: %v", st.Errors, n-have, st.FirstError)
	}
	return nil
}

// open opens one job's stream and returns once its first event came; the
// stream is read in the background until close.
func (s *streamSet) open(id string) error {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+benchKey(watchTenant))
	resp, err := s.hc.Do(req)
	if err != nil {
		cancel()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		cancel()
		return &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	s.mu.Lock()
	s.cancels = append(s.cancels, cancel)
	s.mu.Unlock()
	first := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		n := 0
		for sc.Scan() {
			if sc.Text() != "event: status" {
				continue
			}
			if n++; n == 1 {
				close(first)
				continue // the stream's own first read, not the watcher's
			}
			s.events.Add(1)
		}
		if ctx.Err() == nil {
			s.mu.Lock()
			s.err = fmt.Errorf("the event stream of job %s ended early (%v)", id, sc.Err())
			s.mu.Unlock()
		}
		if n == 0 {
			close(first)
		}
	}()
	select {
	case <-first:
		return nil
	case <-time.After(callTimeout):
		return fmt.Errorf("no first event on the stream of job %s in %s", id, callTimeout)
	}
}

// failure is the last stream that ended before it was closed (an error
// event of an overloaded server, say).
func (s *streamSet) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *streamSet) close() {
	s.mu.Lock()
	for _, c := range s.cancels {
		c()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// watchersMarkdown renders the watchers phase's table.
func (r *results) watchersMarkdown() string {
	if len(r.Watchers) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Watchers.** Event streams of tenant `%s`, one per running `sleep` job (progress moves every second), on an all-in-one with the default watch bound and back-off (`JOBGATE_WATCH_RATE`, `JOBGATE_WATCH_MAX_INTERVAL`), while tenant `%s` reads its own running jobs, %d GETs a second. Describe is every `DescribeWorkflowExecution` of the process (the SDK's `temporal_request` metric), the watcher's share is what it adds to the step with no stream (where the other tenant's GETs are all); events are the status events all streams received after their first (the watcher's reads that found a change).\n\n", watchTenant, otherTenant, otherRate)
	t := newTable("open streams", "Describe/s", "the watcher's (above no stream)", "other tenant's GET p50", "p90", "GETs/s", "stream events/s")
	for _, w := range r.Watchers {
		t.add(fmt.Sprint(w.Streams), rate(w.Describes), rate(w.Watch), ms(w.Get.P(50)), ms(w.Get.P(90)), rate(w.Get.Throughput())+errNote(w.Get), rate(w.Events))
	}
	b.WriteString(t.markdown() + "\n")
	return b.String()
}
