package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
)

// The sync phase: the completion path. A short job's round trip through
// the synchronous shortcut (POST /v1/jobs with Prefer: wait, answered 303)
// against the plain SDK's ExecuteWorkflow + Get of a workflow with one
// no-op activity, and the round trip of a client that submits without
// waiting and follows the job with a long-poll or its event stream; and
// the time from a job's end to a waiting long-poll's
// answer and to an open event stream's final event against the time from
// a plain workflow's end to its Get's return. All on one all-in-one
// jobgate, in alternating rounds.

// syncOptions are the sync phase's flags.
type syncOptions struct {
	conc     []int
	duration time.Duration
	rounds   int
	concFlag string
}

func (so *syncOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&so.concFlag, "sync-conc", "1,16", "sync phase: concurrencies of waiting POSTs and of end-to-waiter trials")
	fs.DurationVar(&so.duration, "sync-duration", 12*time.Second, "sync phase: window of each waiting-POST measurement per concurrency (split in turns)")
	fs.IntVar(&so.rounds, "sync-rounds", 6, "sync phase: rounds of end-to-waiter trials per concurrency")
}

// parse reads the concurrencies and applies -quick's defaults to the
// flags not given.
func (so *syncOptions) parse(fs *flag.FlagSet, quick bool) error {
	var err error
	if so.conc, err = parseInts(so.concFlag); err != nil {
		return fmt.Errorf("-sync-conc: %w", err)
	}
	if quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["sync-duration"] {
			so.duration = 3 * time.Second
		}
		if !set["sync-rounds"] {
			so.rounds = 2
		}
	}
	return nil
}

// syncRow is the sync phase's figures at one concurrency.
type syncRow struct {
	Conc int
	// Round trips: waiting POSTs of sleep 0 and of an http.request to a
	// loopback server, and raw ExecuteWorkflow + Get.
	Sleep, HTTP, Raw stats
	// Round trips of a client that does not wait on the POST: an
	// http.request job submitted (202), then followed to its end by a
	// long-poll (GET with Prefer: wait) or by its event stream.
	HTTPPoll, HTTPStream stats
	// From a job's end (its workflow's close time) to a waiting
	// long-poll's answer, to an event stream's final event, and from a raw
	// workflow's close to its Get's return; RawJobEnd is from a job's end
	// to the return of the plain SDK's Get of the job's own workflow (the
	// same close, delivered by Temporal to an SDK client).
	LongPoll, Stream, RawEnd, RawJobEnd stats
	// RawWorkerEnd is from a raw workflow's close to the return of its
	// worker's call that closed it (RespondWorkflowTaskCompleted), for the
	// workflows of RawEnd: when the worker's process could know of the
	// close without a long-poll.
	RawWorkerEnd stats
	// RawWorkerRead is from the same close to the return of a read of the
	// close event issued when that call returned: when such a process
	// could know the close time.
	RawWorkerRead stats
}

const (
	// syncRawQueue is the sync phase's raw worker's task queue.
	syncRawQueue = "bench-sync-raw"
	// rawSleepWorkflowName runs one activity that sleeps for its argument.
	rawSleepWorkflowName = "BenchRawSleep"
	rawSleepActivityName = "BenchSleep"
	// endJobDuration is how long the jobs of the end-to-waiter trials
	// run, so that their waiters are in place before they end.
	endJobDuration = time.Second
	// endMinTrials is the fewest end-to-waiter trials of each kind per
	// concurrency: at concurrency 1, -sync-rounds alone would make a p50
	// of six numbers, and with 30 the p50 ratios moved by up to 0.3
	// between runs of the same binary.
	endMinTrials = 60
)

func rawSleepWorkflow(ctx workflow.Context, d time.Duration) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, rawSleepActivityName, d).Get(ctx, nil)
}

func rawSleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runSync measures the completion path on a fresh all-in-one.
func runSync(ctx context.Context, o options, bin, dir string, res *results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The http.request jobs call a server of the bench's on loopback.
	all, err := newProc(procSpec{Name: "all-sync", Bin: bin, DataDir: filepath.Join(dir, "all"), LogDir: dir,
		Env: []string{"JOBGATE_ROLE=all", "JOBGATE_ALLOW_PRIVATE_TARGETS=true"}})
	if err != nil {
		return err
	}
	logf("sync: starting the all-in-one jobgate")
	if err := all.startFirst(ctx, "/readyz", 3*time.Minute); err != nil {
		return err
	}
	defer func() {
		if err := all.stop(60 * time.Second); err != nil {
			logf("%v", err)
		}
	}()
	cs := newCompletions()
	c, err := dial(ctx, all.TemporalAddress(), grpc.WithChainUnaryInterceptor(cs.intercept))
	if err != nil {
		return err
	}
	cs.read = readCloseEvent(c.WorkflowService(), "default")
	defer c.Close()
	w := worker.New(c, syncRawQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rawWorkflow, workflow.RegisterOptions{Name: rawWorkflowName})
	w.RegisterActivityWithOptions(rawNoop, activity.RegisterOptions{Name: rawActivityName})
	w.RegisterWorkflowWithOptions(rawSleepWorkflow, workflow.RegisterOptions{Name: rawSleepWorkflowName})
	w.RegisterActivityWithOptions(rawSleep, activity.RegisterOptions{Name: rawSleepActivityName})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the sync phase's raw worker: %w", err)
	}
	defer w.Stop()
	target, stopTarget, err := startTarget()
	if err != nil {
		return err
	}
	defer stopTarget()

	a := newAPI(all.HTTP, 64)
	sleepOp := waitingPost(a, sleepBody(0))
	httpBody := `{"kind":"http.request","input":{"url":"` + target + `"}}`
	httpOp := waitingPost(a, httpBody)
	pollOp := submitAndFollow(a, httpBody, longPollToEnd)
	streamOp := submitAndFollow(a, httpBody, streamToEnd)
	rawOp := func(ctx context.Context, _ int) error { return rawExecute(ctx, c, rawWorkflowName) }
	logf("sync: warm-up")
	for _, f := range []op{sleepOp, httpOp, pollOp, streamOp, rawOp} {
		if s := runLoad(ctx, loadSpec{Concurrency: 4, Duration: time.Minute, MaxOps: 40}, callTimeout, f); s.Errors > 0 {
			return fmt.Errorf("sync warm-up: %d failed, the first: %v", s.Errors, s.FirstError)
		}
	}
	var errs []error
	for _, conc := range o.sync.conc {
		row := syncRow{Conc: conc}
		logf("sync: waiting POSTs (sleep 0, http.request), POSTs followed by a long-poll and by an event stream (http.request), and raw ExecuteWorkflow + Get at concurrency %d, in turns", conc)
		s, _ := alternateN(ctx, loadSpec{Concurrency: conc, Duration: o.sync.duration}, 6, nil, rawOp, sleepOp, httpOp, pollOp, streamOp)
		row.Raw, row.Sleep, row.HTTP, row.HTTPPoll, row.HTTPStream = s[0], s[1], s[2], s[3], s[4]
		logf("sync: a job's end to a waiting long-poll and to an event stream, and raw Get, at concurrency %d, in turns", conc)
		rounds := max(o.sync.rounds, (endMinTrials+conc-1)/conc)
		if o.quick {
			rounds = o.sync.rounds
		}
		e := endRounds(ctx, conc, rounds,
			func(ctx context.Context) (time.Duration, error) { return rawEnd(ctx, c, cs) },
			func(ctx context.Context) (time.Duration, error) { return followEnd(ctx, a, c, longPollToEnd) },
			func(ctx context.Context) (time.Duration, error) { return followEnd(ctx, a, c, streamToEnd) },
			func(ctx context.Context) (time.Duration, error) { return followEnd(ctx, a, c, sdkGetToEnd(c)) })
		row.RawEnd, row.LongPoll, row.Stream, row.RawJobEnd = e[0], e[1], e[2], e[3]
		row.RawWorkerEnd, row.RawWorkerRead = cs.drain()
		for name, st := range map[string]stats{"raw ExecuteWorkflow + Get": row.Raw, "waiting POST sleep 0": row.Sleep, "waiting POST http.request": row.HTTP,
			"POST and long-poll http.request": row.HTTPPoll, "POST and event stream http.request": row.HTTPStream,
			"raw Get at the end": row.RawEnd, "long-poll at the end": row.LongPoll, "event stream at the end": row.Stream,
			"raw Get of a job at its end": row.RawJobEnd} {
			if err := failed(fmt.Sprintf("sync %s at concurrency %d", name, conc), st); err != nil {
				logf("%v", err)
				errs = append(errs, err)
			}
		}
		res.Sync = append(res.Sync, row)
	}
	trials := stepEndTrials
	if o.quick {
		trials = 3
	}
	logf("sync: a pipeline step's end to a waiting long-poll, %d pipelines one after the other", trials)
	var lat []time.Duration
	fails := 0
	var first error
	for range trials {
		d, err := stepEnd(ctx, a, c)
		if err != nil {
			fails++
			first = cmp.Or(first, err)
			continue
		}
		lat = append(lat, d)
	}
	res.StepEnd = newStats(lat, fails, 0, first)
	if err := failed("sync pipeline step end to a long-poll", res.StepEnd); err != nil {
		logf("%v", err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stepEndTrials is how many pipelines the step-end measurement runs.
const stepEndTrials = 12

// stepEnd submits a pipeline whose first step sleeps two seconds and
// whose second waits for it (two: a step's end is written to the memo at
// once when the last write is a second old, flow.PublishInterval, and
// after the rest of that second otherwise); once the first step runs, it
// long-polls the pipeline until an answer shows that step succeeded, and
// returns the time from the step's end (its job's workflow's close,
// closeTime) to that answer. It cancels the pipeline.
func stepEnd(ctx context.Context, a *api, c client.Client) (time.Duration, error) {
	id, err := a.submit(ctx, `{"kind":"pipeline","input":{"steps":[{"id":"a","kind":"sleep","input":{"seconds":2}},{"id":"b","kind":"sleep","input":{"seconds":60},"after":["a"]}]}}`, "")
	if err != nil {
		return 0, err
	}
	defer func() { _ = a.cancel(context.WithoutCancel(ctx), id) }()
	var etag string
	for {
		s, h, err := a.do(ctx, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", nil, http.StatusOK)
		if err != nil {
			return 0, err
		}
		if st, _ := s.step("a"); st.State == "running" {
			etag = h.Get("ETag")
			break
		}
		if s.terminal() {
			return 0, fmt.Errorf("pipeline %s ended %s before its first step ran", id, s.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, got, err := longPollUntil(ctx, a, id, etag, func(s status) bool {
		st, _ := s.step("a")
		return st.State == "succeeded"
	})
	if err != nil {
		return 0, err
	}
	st, ok := s.step("a")
	if !ok || st.State != "succeeded" {
		return 0, fmt.Errorf("pipeline %s ended %s", id, s.State)
	}
	closed, err := closeTime(ctx, c, st.JobID)
	if err != nil {
		return 0, err
	}
	return got.Sub(closed), nil
}

// startTarget serves a small JSON answer on loopback, the http.request
// jobs' target, and returns its URL.
func startTarget() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for the http.request target: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() { _ = srv.Close() }, nil
}

// waitingPost submits body with Prefer: wait and requires the 303 of a
// job that succeeded within the wait.
func waitingPost(a *api, body string) op {
	header := map[string]string{"Prefer": "wait=20"}
	return func(ctx context.Context, _ int) error {
		resp, err := a.send(ctx, http.MethodPost, "/v1/jobs", body, header)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusSeeOther:
			return &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
		case len(b) == 0:
			return errors.New("waiting POST: 303 with an empty body")
		}
		return nil
	}
}

// rawExecute starts a raw workflow (eagerly, as the all-in-one starts its
// jobs) and waits for its result.
func rawExecute(ctx context.Context, c client.Client, workflowType string, args ...any) error {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: uuid.NewString(), TaskQueue: syncRawQueue, EnableEagerStart: true}, workflowType, args...)
	if err != nil {
		return err
	}
	return run.Get(ctx, nil)
}

// rawEnd runs a raw workflow of endJobDuration and returns the time from
// its close to its Get's return; it notes in cs when the worker's call
// that closed it returned.
func rawEnd(ctx context.Context, c client.Client, cs *completions) (time.Duration, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: uuid.NewString(), TaskQueue: syncRawQueue, EnableEagerStart: true}, rawSleepWorkflowName, endJobDuration)
	if err != nil {
		return 0, err
	}
	if err := run.Get(ctx, nil); err != nil {
		return 0, err
	}
	got := time.Now()
	closed, err := closeTime(ctx, c, run.GetID())
	if err != nil {
		return 0, err
	}
	cs.note(run.GetID(), closed)
	return got.Sub(closed), nil
}

// closeTime is when workflow id closed, as Temporal recorded it, to the
// nanosecond. Every end-to-waiter figure is taken from it: a job's
// completedAt is the same time to the millisecond (engine's recordTime),
// which would add half a millisecond on average to jobgate's side alone.
func closeTime(ctx context.Context, c client.Client, id string) (time.Time, error) {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return time.Time{}, err
	}
	t := d.GetWorkflowExecutionInfo().GetCloseTime()
	if t == nil {
		return time.Time{}, fmt.Errorf("workflow %s has not closed", id)
	}
	return t.AsTime(), nil
}

// sdkGetToEnd waits for job id's workflow to close with the plain SDK's
// Get (a history long-poll filtered to the close event); it returns when
// the Get returned.
func sdkGetToEnd(c client.Client) func(context.Context, *api, string) (status, time.Time, error) {
	return func(ctx context.Context, _ *api, id string) (status, time.Time, error) {
		err := c.GetWorkflow(ctx, id, "").Get(ctx, nil)
		return status{}, time.Now(), err
	}
}

// followEnd submits a job of endJobDuration and follows it to its end
// with follow (a long-poll, the event stream, the SDK's Get); it returns
// the time from the job's end (its workflow's close, closeTime) to the
// moment follow saw it.
func followEnd(ctx context.Context, a *api, c client.Client, follow func(context.Context, *api, string) (status, time.Time, error)) (time.Duration, error) {
	id, err := a.submit(ctx, sleepBody(int(endJobDuration/time.Second)), "")
	if err != nil {
		return 0, err
	}
	_, got, err := follow(ctx, a, id)
	if err != nil {
		return 0, err
	}
	closed, err := closeTime(ctx, c, id)
	if err != nil {
		return 0, err
	}
	return got.Sub(closed), nil
}

// longPollToEnd long-polls job id (GET with Prefer: wait and the last
// ETag) until it has ended; it returns the final status and when its
// answer was read.
func longPollToEnd(ctx context.Context, a *api, id string) (status, time.Time, error) {
	return longPollUntil(ctx, a, id, "", status.terminal)
}

// longPollUntil long-polls job id (GET with Prefer: wait, If-None-Match
// etag at first, then each answer's ETag) until an answer satisfies done
// or says the job ended; it returns that status and when the answer was
// read.
func longPollUntil(ctx context.Context, a *api, id, etag string, done func(status) bool) (status, time.Time, error) {
	header := map[string]string{"Prefer": "wait=30"}
	if etag != "" {
		header["If-None-Match"] = etag
	}
	for {
		resp, err := a.send(ctx, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", header)
		if err != nil {
			return status{}, time.Time{}, err
		}
		b, err := io.ReadAll(resp.Body)
		got := time.Now()
		resp.Body.Close()
		if err != nil {
			return status{}, time.Time{}, err
		}
		switch resp.StatusCode {
		case http.StatusNotModified:
			continue
		case http.StatusOK:
		default:
			return status{}, time.Time{}, &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
		}
		var s status
		if err := json.Unmarshal(b, &s); err != nil {
			return status{}, time.Time{}, fmt.Errorf("decode a long-poll's answer: %w", err)
		}
		if done(s) || s.terminal() {
			return s, got, nil
		}
		header["If-None-Match"] = resp.Header.Get("ETag")
	}
}

// streamToEnd reads job id's event stream until an event says it has
// ended; it returns that status and when the event was read.
func streamToEnd(ctx context.Context, a *api, id string) (status, time.Time, error) {
	resp, err := a.send(ctx, http.MethodGet, "/v1/jobs/"+id+"/events", "", nil)
	if err != nil {
		return status{}, time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return status{}, time.Time{}, &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		got := time.Now()
		var s status
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			return status{}, time.Time{}, fmt.Errorf("decode an event: %w", err)
		}
		if s.terminal() {
			return s, got, nil
		}
	}
	if err := sc.Err(); err != nil {
		return status{}, time.Time{}, err
	}
	return status{}, time.Time{}, fmt.Errorf("job %s: its event stream ended before the job", id)
}

// submitAndFollow submits body without waiting (202) and follows the job
// to its end with follow (a long-poll or the event stream), requiring it
// to succeed: a client's round trip when it does not use Prefer: wait on
// the POST.
func submitAndFollow(a *api, body string, follow func(context.Context, *api, string) (status, time.Time, error)) op {
	return func(ctx context.Context, _ int) error {
		id, err := a.submit(ctx, body, "")
		if err != nil {
			return err
		}
		s, _, err := follow(ctx, a, id)
		if err == nil && s.State != "succeeded" {
			err = fmt.Errorf("job %s ended %s", id, s.State)
		}
		return err
	}
}

// endRounds runs rounds of trials: in each, every trial kind runs conc
// times at once, the kinds one after the other, in reverse order every
// other round. It returns each kind's measured times.
func endRounds(ctx context.Context, conc, rounds int, trials ...func(context.Context) (time.Duration, error)) []stats {
	lat := make([][]time.Duration, len(trials))
	errs := make([]int, len(trials))
	first := make([]error, len(trials))
	for r := range max(rounds, 1) {
		for k := range trials {
			if r%2 == 1 {
				k = len(trials) - 1 - k
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range conc {
				wg.Go(func() {
					cctx, cancel := context.WithTimeout(ctx, callTimeout)
					defer cancel()
					d, err := trials[k](cctx)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs[k]++
						if first[k] == nil {
							first[k] = err
						}
						return
					}
					lat[k] = append(lat[k], d)
				})
			}
			wg.Wait()
		}
	}
	out := make([]stats, len(trials))
	for k := range trials {
		out[k] = newStats(lat[k], errs[k], 0, first[k])
	}
	return out
}

// twoAgainstRaw is a table row of two jobgate measurements, a and b,
// beside raw's: the p50 and p99 of each, then a's and b's p50 and p99 as
// ratios to raw's.
func twoAgainstRaw(conc int, a, b, raw stats) []string {
	return []string{fmt.Sprint(conc), ms(a.P(50)) + errNote(a), ms(a.P(99)), ms(b.P(50)) + errNote(b), ms(b.P(99)),
		ms(raw.P(50)) + errNote(raw), ms(raw.P(99)),
		ratio(float64(a.P(50)), float64(raw.P(50))), ratio(float64(a.P(99)), float64(raw.P(99))),
		ratio(float64(b.P(50)), float64(raw.P(50))), ratio(float64(b.P(99)), float64(raw.P(99)))}
}

// syncMarkdown is the sync phase's section of the report.
func (r *results) syncMarkdown() string {
	if len(r.Sync) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("**Completion path.** A short job's round trip through the synchronous shortcut (`POST /v1/jobs` with `Prefer: wait`, answered `303`): a `sleep 0` job and an `http.request` to a server of the bench's on loopback, against the plain SDK's `ExecuteWorkflow` + `Get` of a workflow with one no-op activity, eager start on both sides, on one all-in-one jobgate, closed loop, in turns.\n\n")
	t := newTable("concurrency", "POST wait sleep 0 p50", "p99", "POST wait http.request p50", "p99", "raw Execute + Get p50", "p99", "sleep / raw p50", "p99", "http / raw p50", "p99")
	for _, s := range r.Sync {
		t.add(twoAgainstRaw(s.Conc, s.Sleep, s.HTTP, s.Raw)...)
	}
	b.WriteString(t.markdown() + "\n")
	b.WriteString("The same `http.request` job's round trip for a client that does not wait on the POST: the POST answered `202`, then the job followed to its end by a long-poll (`GET` with `Prefer: wait`, the answer with the finished status) or by its event stream (the final event), in the same turns as the table above, against the same raw `ExecuteWorkflow` + `Get`.\n\n")
	t = newTable("concurrency", "POST + long-poll p50", "p99", "POST + stream p50", "p99", "raw Execute + Get p50", "p99", "long-poll / raw p50", "p99", "stream / raw p50", "p99")
	for _, s := range r.Sync {
		t.add(twoAgainstRaw(s.Conc, s.HTTPPoll, s.HTTPStream, s.Raw)...)
	}
	b.WriteString(t.markdown() + "\n")
	fmt.Fprintf(&b, "From a job's end (its workflow's close time) to the answer of a long-poll waiting on it (`GET` with `Prefer: wait`) and to an open event stream's final event, for `sleep %d` jobs, against the time from a plain workflow's close (one activity of the same length) to the return of its `Get`; the given number of jobs at once, in turns.\n\n", int(endJobDuration/time.Second))
	t = newTable("concurrency", "long-poll p50", "p99", "event stream p50", "p99", "raw Get p50", "p99", "long-poll / raw p50", "p99", "stream / raw p50", "p99")
	for _, s := range r.Sync {
		t.add(twoAgainstRaw(s.Conc, s.LongPoll, s.Stream, s.RawEnd)...)
	}
	b.WriteString(t.markdown() + "\n")
	b.WriteString("When a worker knows of the close: from the same raw workflows' close to the return of their worker's call that closed them (`RespondWorkflowTaskCompleted`, seen by an interceptor on the bench's worker client), and to the return of a read of the close event issued at that moment (`GetWorkflowExecutionHistory` of the close event, no long-poll), against the return of their `Get`. A waiter in the worker's process could learn of a job's end at the first moment without a long-poll, but its `completedAt` (the close time Temporal gives the event) only at the second.\n\n")
	t = newTable("concurrency", "worker's closing call p50", "p99", "read after it p50", "p99", "raw Get p50", "p99", "worker / Get p50", "read / Get p50", "p99")
	for _, s := range r.Sync {
		t.add(fmt.Sprint(s.Conc), ms(s.RawWorkerEnd.P(50))+errNote(s.RawWorkerEnd), ms(s.RawWorkerEnd.P(99)),
			ms(s.RawWorkerRead.P(50))+errNote(s.RawWorkerRead), ms(s.RawWorkerRead.P(99)), ms(s.RawEnd.P(50)), ms(s.RawEnd.P(99)),
			ratio(float64(s.RawWorkerEnd.P(50)), float64(s.RawEnd.P(50))),
			ratio(float64(s.RawWorkerRead.P(50)), float64(s.RawEnd.P(50))), ratio(float64(s.RawWorkerRead.P(99)), float64(s.RawEnd.P(99))))
	}
	b.WriteString(t.markdown() + "\n")
	if r.StepEnd.N+r.StepEnd.Errors > 0 {
		b.WriteString("A change before a job's end: from a pipeline's first step's end (its job's workflow's close time, to the nanosecond; a `sleep 2`, the second step waiting for it; two seconds, so that the memo write of the step's end is not held by the one-second throttle of a workflow kind's memo writes) to the answer of a long-poll waiting on the pipeline that shows the step succeeded, pipelines one after the other. The close waiter follows the workflow's history, so the memo write that records the step's end cuts the watcher's look-up interval short. No raw figure: a plain workflow has no status to long-poll.\n\n")
		t = newTable("pipelines", "step end to long-poll p50", "p90", "max")
		t.add(fmt.Sprint(r.StepEnd.N)+errNote(r.StepEnd), ms(r.StepEnd.P(50)), ms(r.StepEnd.P(90)), ms(r.StepEnd.P(100)))
		b.WriteString(t.markdown() + "\n")
	}
	fmt.Fprintf(&b, "The same close delivered by Temporal to an SDK client: from a `sleep %d` job's end to the return of the plain SDK's `Get` of the job's own workflow (a history long-poll filtered to the close event, in the bench's process), in the same rounds, against the long-poll and stream figures above.\n\n", int(endJobDuration/time.Second))
	t = newTable("concurrency", "SDK Get of the job p50", "p99", "max", "long-poll / SDK Get p50", "p99", "stream / SDK Get p50", "p99", "long-poll max", "stream max")
	for _, s := range r.Sync {
		t.add(fmt.Sprint(s.Conc), ms(s.RawJobEnd.P(50))+errNote(s.RawJobEnd), ms(s.RawJobEnd.P(99)), ms(s.RawJobEnd.P(100)),
			ratio(float64(s.LongPoll.P(50)), float64(s.RawJobEnd.P(50))), ratio(float64(s.LongPoll.P(99)), float64(s.RawJobEnd.P(99))),
			ratio(float64(s.Stream.P(50)), float64(s.RawJobEnd.P(50))), ratio(float64(s.Stream.P(99)), float64(s.RawJobEnd.P(99))),
			ms(s.LongPoll.P(100)), ms(s.Stream.P(100)))
	}
	b.WriteString(t.markdown() + "\n")
	return b.String()
}
