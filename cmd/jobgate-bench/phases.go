package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/job"
)

// callTimeout bounds one measured call.
const callTimeout = 30 * time.Second

// rig is the system under test of the main and store phases: the
// all-in-one jobgate (embedded Temporal, worker, API), an api-role jobgate
// on the same server whose task queue nobody polls (the accept path alone),
// and the bench's own SDK client and raw worker on that server.
type rig struct {
	all    *proc
	accept *proc
	c      client.Client
	stopW  func()
	// engine is jobgate's engine in the bench's own process, on the
	// bench's SDK client: what a POST does without the HTTP layer.
	engine *engine.Service
	// allAPI is the all-in-one's API; acceptAPI the api-role one's.
	allAPI, acceptAPI *api
}

// allPprof, when set (-all-pprof), is the address of the all-in-one's profiler
// listener (JOBGATE_PPROF_ADDR), for heap profiles taken during a run.
var allPprof string

func startRig(ctx context.Context, bin, dir, store string, apiEnv ...string) (*rig, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	name := store
	if strings.Contains(store, "://") {
		name = "postgres" // a URL is no file name
	}
	env := []string{"JOBGATE_ROLE=all", "JOBGATE_EMBEDDED_STORE=" + store}
	if allPprof != "" {
		env = append(env, "JOBGATE_PPROF_ADDR="+allPprof)
	}
	all, err := newProc(procSpec{Name: "all-" + name, Bin: bin, DataDir: filepath.Join(dir, "all"), LogDir: dir, Env: env})
	if err != nil {
		return nil, err
	}
	if allPprof != "" {
		logf("the all-in-one's profiler: http://%s/debug/pprof/", allPprof)
	}
	logf("starting the all-in-one jobgate (%s store)", store)
	if err := all.startFirst(ctx, "/readyz", 3*time.Minute); err != nil {
		return nil, err
	}
	r := &rig{all: all}
	fail := func(err error) (*rig, error) { r.close(); return nil, err }
	if r.c, err = dial(ctx, all.TemporalAddress()); err != nil {
		return fail(err)
	}
	w, err := startRawWorker(r.c)
	if err != nil {
		return fail(err)
	}
	r.stopW = w.Stop
	kinds, err := job.NewRegistry(activities.Sleep())
	if err != nil {
		return fail(err)
	}
	r.engine = engine.New(r.c, kinds, engine.Config{TaskQueue: acceptQueue, Namespace: "default"})
	r.accept, err = newProc(procSpec{Name: "api-" + name, Bin: bin, DataDir: filepath.Join(dir, "api"), LogDir: dir,
		Env: append([]string{"JOBGATE_ROLE=api", "JOBGATE_TEMPORAL_ADDRESS=" + all.TemporalAddress(), "JOBGATE_TASK_QUEUE=" + acceptQueue}, apiEnv...)})
	if err != nil {
		return fail(err)
	}
	// Nobody polls its queue, so it is never ready; it is healthy.
	if err := r.accept.startFirst(ctx, "/healthz", time.Minute); err != nil {
		return fail(err)
	}
	r.allAPI = newAPI(all.HTTP, 256)
	r.acceptAPI = newAPI(r.accept.HTTP, 256)
	return r, nil
}

// cpu is the CPU time the rig's processes and the bench have used so far.
func (r *rig) cpu() cpuUse {
	return cpuUse{Server: r.all.cpuTime(), API: r.accept.cpuTime(), Bench: selfCPU()}
}

func (r *rig) close() {
	if r.accept != nil {
		_ = r.accept.stop(30 * time.Second)
	}
	if r.stopW != nil {
		r.stopW()
	}
	if r.c != nil {
		r.c.Close()
	}
	if r.all != nil {
		if err := r.all.stop(60 * time.Second); err != nil {
			logf("%v", err)
		}
	}
}

// acceptOp submits a sleep-0 job through the api-role jobgate.
func (r *rig) acceptOp(ctx context.Context, _ int) error {
	return r.acceptAPI.hit(ctx, http.MethodPost, "/v1/jobs", sleep0, http.StatusAccepted)
}

var sleep0 = sleepBody(0)

// engineOp submits a sleep-0 job through jobgate's engine in this process
// (the api-role jobgate's tenant, task queue and request, without HTTP).
func (r *rig) engineOp(ctx context.Context, i int) error {
	_, _, err := r.engine.Submit(ctx, job.SubmitRequest{Tenant: "default", Kind: "sleep", Input: sleep0Input,
		RequestID: "bench-" + strconv.Itoa(i)})
	return err
}

var sleep0Input = json.RawMessage(`{"seconds":0}`)

// rawStartOp starts a raw workflow on the queue nobody polls.
func (r *rig) rawStartOp(ctx context.Context, _ int) error {
	_, err := rawStart(ctx, r.c, idleQueue)
	return err
}

// e2e is one end-to-end measurement: n jobs submitted by conc callers,
// then the time from the first start to the last completion.
type e2e struct {
	Jobs   int
	Span   time.Duration
	Submit stats
}

// Rate is jobs completed per second.
func (e e2e) Rate() float64 {
	if e.Span <= 0 {
		return 0
	}
	return float64(e.Jobs) / e.Span.Seconds()
}

// runE2E submits n jobs with start (which returns the new workflow's ID),
// waits until visibility shows them all completed, and measures the span
// from the earliest start to the latest close.
func runE2E(ctx context.Context, c client.Client, workflowType string, n, conc int, start func(context.Context) (string, error)) (e2e, []string, error) {
	completed := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Completed'", workflowType)
	base, err := count(ctx, c, completed)
	if err != nil {
		return e2e{}, nil, err
	}
	ids := make([]string, n)
	submit := runLoad(ctx, loadSpec{Concurrency: conc, Duration: 10 * time.Minute, MaxOps: n}, callTimeout, func(ctx context.Context, i int) error {
		id, err := start(ctx)
		ids[i] = id
		return err
	})
	if submit.Errors > 0 {
		return e2e{}, nil, fmt.Errorf("%d of %d %s submissions failed, the first with: %v", submit.Errors, n, workflowType, submit.FirstError)
	}
	if _, err := waitCount(ctx, c, completed, base+int64(n), 10*time.Minute); err != nil {
		return e2e{}, nil, err
	}
	// Each workflow's own start and close time, from Temporal's record.
	// (One listing would do, but listing a thousand closed workflows timed
	// out on SQLite visibility with some ten thousand stored.)
	execs := make([]execution, n)
	described := runLoad(ctx, loadSpec{Concurrency: 16, Duration: 5 * time.Minute, MaxOps: n}, callTimeout, func(ctx context.Context, i int) error {
		d, err := c.DescribeWorkflowExecution(ctx, ids[i], "")
		if err != nil {
			return err
		}
		info := d.GetWorkflowExecutionInfo()
		if st := info.GetStatus().String(); st != "Completed" {
			return fmt.Errorf("%s workflow %s is %s, not Completed", workflowType, ids[i], st)
		}
		execs[i] = execution{ID: ids[i], Status: "Completed", Start: info.GetStartTime().AsTime(), Close: info.GetCloseTime().AsTime()}
		return nil
	})
	if described.N != n {
		return e2e{}, nil, fmt.Errorf("described %d of the %d %s workflows, the first failure: %v", described.N, n, workflowType, described.FirstError)
	}
	return e2e{Jobs: n, Span: span(execs), Submit: submit}, ids, nil
}

func (r *rig) jobgateE2E(ctx context.Context, n, conc int) (e2e, []string, error) {
	return runE2E(ctx, r.c, "Job", n, conc, func(ctx context.Context) (string, error) {
		return r.allAPI.submit(ctx, sleepBody(0), "")
	})
}

func (r *rig) rawE2E(ctx context.Context, n, conc int) (e2e, []string, error) {
	return runE2E(ctx, r.c, rawWorkflowName, n, conc, func(ctx context.Context) (string, error) {
		return rawStart(ctx, r.c, rawQueue)
	})
}

// fill submits jobs through the api-role jobgate until the namespace holds
// target workflows, and returns how many it added and how long it took.
func (r *rig) fill(ctx context.Context, target, conc int, bound time.Duration) (stats, error) {
	have, err := count(ctx, r.c, "")
	if err != nil {
		return stats{}, err
	}
	missing := target - int(have)
	if missing <= 0 {
		return stats{}, nil
	}
	logf("accumulating %d more jobs (to %d) at concurrency %d", missing, target, conc)
	deadline := time.Now().Add(bound)
	s := runLoad(ctx, loadSpec{Concurrency: conc, Duration: bound, MaxOps: missing}, callTimeout, r.acceptOp)
	// An overloaded server answers some accepts 503 (retry later): top up
	// what they left missing, within the same bound.
	for short := missing - s.N; short > 0 && s.Errors > 0 && time.Now().Before(deadline) && ctx.Err() == nil; short = missing - s.N {
		logf("%d accepts failed (the first: %v); submitting %d more", s.Errors, s.FirstError, short)
		more := runLoad(ctx, loadSpec{Concurrency: conc, Duration: time.Until(deadline), MaxOps: short}, callTimeout, r.acceptOp)
		s = merge(s, more)
		if more.Errors == 0 {
			break
		}
	}
	if s.N < missing {
		return s, fmt.Errorf("accumulated %d of %d jobs within %s (%d errors, the first: %v)", s.N, missing, bound, s.Errors, s.FirstError)
	}
	logf("accumulated %d jobs in %s (%.0f/s; %d accepts failed and were made up)", s.N, s.Elapsed.Round(time.Second), s.Throughput(), s.Errors)
	return s, nil
}

// startRunning submits n long sleep jobs to the all-in-one and waits until
// they all run; the returned function cancels them.
func (r *rig) startRunning(ctx context.Context, n int) ([]string, func(), error) {
	ids := make([]string, n)
	for i := range ids {
		id, err := r.allAPI.submit(ctx, sleepBody(3600), "")
		if err != nil {
			return nil, nil, fmt.Errorf("submit a long job: %w", err)
		}
		ids[i] = id
	}
	cancelAll := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range ids {
			if err := r.allAPI.cancel(cctx, id); err != nil {
				logf("cancel %s: %v", id, err)
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, id := range ids {
		for {
			s, err := r.allAPI.get(ctx, id)
			if err == nil && s.State == "running" {
				break
			}
			if time.Now().After(deadline) {
				cancelAll()
				return nil, nil, fmt.Errorf("job %s not running after a minute (%v, state %q)", id, err, s.State)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return ids, cancelAll, nil
}

// getOp reads the status of ids in turn through a.
func getOp(a *api, ids []string) op {
	return func(ctx context.Context, i int) error {
		return a.hit(ctx, http.MethodGet, "/v1/jobs/"+ids[i%len(ids)]+"?redirect=false", "", http.StatusOK)
	}
}

// describeOp describes ids in turn with the SDK.
func describeOp(c client.Client, ids []string) op {
	return func(ctx context.Context, i int) error {
		_, err := c.DescribeWorkflowExecution(ctx, ids[i%len(ids)], "")
		return err
	}
}

// readAll reads every id once (which caches finished jobs), conc at a time.
func readAll(ctx context.Context, a *api, ids []string, conc int) error {
	s := runLoad(ctx, loadSpec{Concurrency: conc, Duration: 5 * time.Minute, MaxOps: len(ids)}, callTimeout, getOp(a, ids))
	if s.Errors > 0 {
		return fmt.Errorf("%d of %d status reads failed, the first: %v", s.Errors, len(ids), s.FirstError)
	}
	return nil
}

// probe measures accept and status latency at the current number of
// accumulated jobs.
func (r *rig) probe(ctx context.Context, o options, finished []string) (growthRow, error) {
	n, err := count(ctx, r.c, "")
	if err != nil {
		return growthRow{}, err
	}
	row := growthRow{Accumulated: int(n)}
	spec := loadSpec{Concurrency: o.statusConc, Duration: o.duration}
	logf("probe at %d accumulated jobs: accept", n)
	row.Accept = runLoad(ctx, spec, callTimeout, r.acceptOp)
	running, cancelRunning, err := r.startRunning(ctx, o.statusConc)
	if err != nil {
		return row, err
	}
	logf("probe at %d accumulated jobs: status", n)
	row.Running = runLoad(ctx, spec, callTimeout, getOp(r.allAPI, running))
	cancelRunning()
	row.Finished = runLoad(ctx, spec, callTimeout, getOp(r.allAPI, finished))
	return row, errors.Join(failed("growth accept", row.Accept), failed("growth running status", row.Running), failed("growth finished status", row.Finished))
}

// failed is an error if s had failures.
func failed(what string, s stats) error {
	if s.Errors == 0 && s.N > 0 {
		return nil
	}
	return fmt.Errorf("%s: %d ok, %d failed, the first: %v", what, s.N, s.Errors, s.FirstError)
}

// runMain measures items 1 to 5 on one rig with the default (file) store;
// with growthOnly, items 4 and 5 alone (the warm-up, then the growth points
// and the peak memory), which is what the "growth" phase runs.
func runMain(ctx context.Context, o options, bin, dir string, res *results, growthOnly bool) error {
	var apiEnv []string
	if o.apiPprof != "" {
		apiEnv = append(apiEnv, "JOBGATE_PPROF_ADDR="+o.apiPprof)
	}
	r, err := startRig(ctx, bin, dir, "file", apiEnv...)
	if err != nil {
		return err
	}
	defer r.close()
	var errs []error
	keep := func(err error) {
		if err != nil {
			logf("%v", err)
			errs = append(errs, err)
		}
	}

	logf("warm-up: %d sleep-0 jobs and %d raw workflows", o.warmJobs, o.warmJobs)
	_, finished, err := r.jobgateE2E(ctx, o.warmJobs, 16)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, _, err := r.rawE2E(ctx, o.warmJobs, 16); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := readAll(ctx, r.allAPI, finished, 16); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if growthOnly {
		res.StatusConc = o.statusConc
		r.growth(ctx, o, finished, o.growth, res, keep)
		r.memory(ctx, dir, res, keep)
		return errors.Join(errs...)
	}

	if len(o.growth) > 0 && !o.acceptOnly {
		if _, err := r.fill(ctx, o.growth[0], o.fillConc, o.fillMax); err != nil {
			return err
		}
		row, err := r.probe(ctx, o, finished)
		keep(err)
		res.Growth = append(res.Growth, row)
	}

	// The accept windows are cut in acceptSlices turns of each, whose
	// jobgate / raw ratios the report gives the spread of.
	const acceptSlices = 8
	for _, conc := range o.conc {
		spec := loadSpec{Concurrency: conc, Duration: o.duration}
		logf("accept path at concurrency %d: raw StartWorkflow, POST /v1/jobs and the engine without HTTP, in turns", conc)
		s, cpu, turns := alternateSlices(ctx, spec, acceptSlices, r.cpu, r.rawStartOp, r.acceptOp, r.engineOp)
		raw, jg, eng := s[0], s[1], s[2]
		keep(failed(fmt.Sprintf("raw starts at concurrency %d", conc), raw))
		keep(failed(fmt.Sprintf("accepts at concurrency %d", conc), jg))
		keep(failed(fmt.Sprintf("engine submissions at concurrency %d", conc), eng))
		res.Accept = append(res.Accept, acceptRow{Conc: conc, Jobgate: jg, Raw: raw, Engine: eng,
			CPURaw: cpu[0].perOp(raw.N), CPUJobgate: cpu[1].perOp(jg.N), CPUEngine: cpu[2].perOp(eng.N),
			Slices: sliceRatios(turns[1], turns[0])})
	}
	if o.acceptOnly {
		return errors.Join(errs...)
	}

	logf("end to end: %d sleep-0 jobs, %d submitters", o.e2eJobs, o.e2eConc)
	jgE2E, done, err := r.jobgateE2E(ctx, o.e2eJobs, o.e2eConc)
	keep(err)
	logf("end to end: %d raw workflows with one activity", o.e2eJobs)
	rawE2E, rawDone, err := r.rawE2E(ctx, o.e2eJobs, o.e2eConc)
	keep(err)
	res.E2E = &e2eRow{Conc: o.e2eConc, Jobgate: jgE2E, Raw: rawE2E}
	res.E2E.JobgateHistory, err = sampleHistory(ctx, r.c, "sleep-0 job", done)
	keep(err)
	res.E2E.RawHistory, err = sampleHistory(ctx, r.c, "raw workflow", rawDone)
	keep(err)
	finished = append(finished, done...)

	spec := loadSpec{Concurrency: o.statusConc, Duration: o.duration}
	running, cancelRunning, err := r.startRunning(ctx, o.statusConc)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	logf("status of running jobs: GET and raw Describe, in turns")
	runJG, runRaw, _, _ := alternate(ctx, spec, 4, getOp(r.allAPI, running), describeOp(r.c, running), nil)
	cancelRunning()
	keep(readAll(ctx, r.allAPI, finished, 16))
	logf("status of finished jobs: GET and raw Describe, in turns")
	finJG, finRaw, _, _ := alternate(ctx, spec, 4, getOp(r.allAPI, finished), describeOp(r.c, finished), nil)
	for name, s := range map[string]stats{"GET running": runJG, "Describe running": runRaw, "GET finished": finJG, "Describe finished": finRaw} {
		keep(failed(name, s))
	}
	res.StatusConc = o.statusConc
	res.Status = []statusRow{
		{What: "running", Jobs: len(running), Jobgate: runJG, Raw: runRaw},
		{What: "finished", Jobs: len(finished), Jobgate: finJG, Raw: finRaw},
	}

	r.growth(ctx, o, finished, o.growth[min(1, len(o.growth)):], res, keep)
	r.memory(ctx, dir, res, keep)
	return errors.Join(errs...)
}

// growth accumulates jobs up to each of targets in turn and probes accept
// and status latency there (item 4).
func (r *rig) growth(ctx context.Context, o options, finished []string, targets []int, res *results, keep func(error)) {
	for _, target := range targets {
		fs, err := r.fill(ctx, target, o.fillConc, o.fillMax)
		if err != nil {
			keep(err)
			break
		}
		row, err := r.probe(ctx, o, finished)
		keep(err)
		row.Fill = fs
		res.Growth = append(res.Growth, row)
	}
}

// memory records the all-in-one's peak resident set, the workflows it
// holds and the size of its SQLite file (item 5).
func (r *rig) memory(ctx context.Context, dir string, res *results, keep func(error)) {
	if rss, err := r.all.peakRSS(); err != nil {
		keep(fmt.Errorf("peak memory: %w", err))
	} else {
		res.PeakRSS = rss
		logf("peak memory of the all-in-one (VmHWM): %s", mib(rss))
	}
	if n, err := count(ctx, r.c, ""); err == nil {
		res.Workflows = int(n)
	}
	if st, err := os.Stat(filepath.Join(dir, "all", "temporal.db")); err == nil {
		res.DBBytes = st.Size()
	}
}

// runStores measures starts, accepts and end-to-end jobs on a fresh rig
// with each embedded store.
// With a before binary, its file store is measured first, as "file
// (before)".
func runStores(ctx context.Context, o options, bin, before, dir string, res *results) error {
	type run struct{ label, bin, store string }
	var runs []run
	if before != "" {
		runs = append(runs, run{"file (before)", before, "file"})
	}
	for _, store := range o.stores {
		runs = append(runs, run{store, bin, store})
	}
	var errs []error
	for i, r := range runs {
		row, err := measureStore(ctx, o, r.bin, filepath.Join(dir, fmt.Sprint(i)), r.store)
		row.Store = r.label
		if err != nil {
			logf("%s store: %v", r.label, err)
			errs = append(errs, fmt.Errorf("%s store: %w", r.label, err))
		}
		res.Stores = append(res.Stores, row)
	}
	return errors.Join(errs...)
}

func measureStore(ctx context.Context, o options, bin, dir, store string) (storeRow, error) {
	row := storeRow{Store: store}
	r, err := startRig(ctx, bin, dir, store)
	if err != nil {
		return row, err
	}
	defer r.close()
	// Warm up both paths.
	if _, _, err := r.jobgateE2E(ctx, 50, 16); err != nil {
		return row, err
	}
	if _, _, err := r.rawE2E(ctx, 50, 16); err != nil {
		return row, err
	}
	conc := o.conc[len(o.conc)-1]
	row.Conc = conc
	spec := loadSpec{Concurrency: conc, Duration: o.storeDur}
	logf("%s store: raw starts and accepts in turns, at concurrency %d", store, conc)
	var cpuStart, cpuAccept cpuUse
	row.RawStarts, row.Accept, cpuStart, cpuAccept = alternate(ctx, spec, 2, r.rawStartOp, r.acceptOp, r.cpu)
	row.CPUStart, row.CPUAccept = perOp(cpuStart.Server, row.RawStarts.N), perOp(cpuAccept.Server, row.Accept.N)
	logf("%s store: %d jobs end to end", store, o.storeJobs)
	var errs []error
	cpu0 := r.all.cpuTime()
	var ids []string
	if row.JobgateE2E, ids, err = r.jobgateE2E(ctx, o.storeJobs, o.e2eConc); err != nil {
		errs = append(errs, err)
	}
	row.CPUE2E = perOp(r.all.cpuTime()-cpu0, row.JobgateE2E.Jobs)
	_, _ = sampleHistory(ctx, r.c, "sleep-0 job", ids)
	if row.RawE2E, ids, err = r.rawE2E(ctx, o.storeJobs, o.e2eConc); err != nil {
		errs = append(errs, err)
	}
	_, _ = sampleHistory(ctx, r.c, "raw workflow", ids)
	return row, errors.Join(append(errs, failed("raw starts", row.RawStarts), failed("accepts", row.Accept))...)
}
