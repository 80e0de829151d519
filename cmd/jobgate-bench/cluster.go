package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/devserver/pgtest"
	"github.com/jobgate/jobgate/webhook"
)

// The cluster phase: jobgate in its production shape, separate api and
// worker processes on a Temporal server on PostgreSQL, each its own OS
// process, in four topologies (1 or 2 APIs × 1 or 2 workers), beside the
// SQLite and PostgreSQL all-in-ones measured the same way in the same run.
//
// The Temporal server is a jobgate all-in-one on PostgreSQL
// (JOBGATE_EMBEDDED_STORE=postgres://…) whose API and worker use a task
// queue of their own (temporalQueue): in the topologies they sit idle and
// the process is, in effect, the Temporal server alone; its own row, the
// PostgreSQL all-in-one, is measured through them.

// temporalQueue is the task queue of the all-in-one that serves as the
// cluster's Temporal server; the api and worker processes use jobgate's
// default queue.
const temporalQueue = "bench-aio"

// clusterRow is one topology of the cluster phase, or an all-in-one beside
// them.
type clusterRow struct {
	Name string
	// APIs and Workers count the api and worker processes (0 and 0 for an
	// all-in-one).
	APIs, Workers int
	// Postgres tells whether Temporal's store is PostgreSQL.
	Postgres bool
	Conc     int
	// Accept is the closed-loop POST of sleep-0 jobs, spread over the API
	// processes, while the workers run them.
	Accept stats
	// Drain is from the end of the accept window until every job it
	// accepted had succeeded.
	Drain time.Duration
	// E2E is jobs from their accept to their success.
	E2E e2e
	// Unavailable counts 503 answers to submissions, in both measurements;
	// the end-to-end submitters retry them.
	Unavailable int
	// CPU is CPU time per accepted job in each kind of process, from the
	// start of the accept window until the last of its jobs succeeded:
	// each job's accept and its run.
	CPU clusterCPU
}

// clusterCPU is CPU time split by process: the api processes, the worker
// processes, the process that runs Temporal (in an all-in-one row: the
// whole all-in-one), PostgreSQL (the postmaster and all its backends), and
// the bench.
type clusterCPU struct{ API, Worker, Temporal, Postgres, Bench time.Duration }

func (c clusterCPU) sub(d clusterCPU) clusterCPU {
	return clusterCPU{c.API - d.API, c.Worker - d.Worker, c.Temporal - d.Temporal, c.Postgres - d.Postgres, c.Bench - d.Bench}
}

func (c clusterCPU) perOp(n int) clusterCPU {
	return clusterCPU{perOp(c.API, n), perOp(c.Worker, n), perOp(c.Temporal, n), perOp(c.Postgres, n), perOp(c.Bench, n)}
}

// Total is the CPU time of every process but the bench.
func (c clusterCPU) Total() time.Duration { return c.API + c.Worker + c.Temporal + c.Postgres }

// topology is the processes one clusterRow measures.
type topology struct {
	apis, workers []*proc
	// temporal is the process that runs the Temporal server (an
	// all-in-one: the one the row measures, or the cluster's server).
	temporal *proc
	// pgPID is PostgreSQL's postmaster (0: no PostgreSQL).
	pgPID int
	c     client.Client
	// submitters are the HTTP clients of the API processes, one each.
	submitters []*api
	// unavailable counts 503 answers.
	unavailable atomic.Int64
}

func (t *topology) cpu() clusterCPU {
	u := clusterCPU{Temporal: t.temporal.cpuTime(), Bench: selfCPU()}
	for _, p := range t.apis {
		u.API += p.cpuTime()
	}
	for _, p := range t.workers {
		u.Worker += p.cpuTime()
	}
	if t.pgPID > 0 {
		u.Postgres = treeCPU(t.pgPID)
	}
	return u
}

// acceptOp POSTs a sleep-0 job to the API processes in turn.
func (t *topology) acceptOp(ctx context.Context, i int) error {
	err := t.submitters[i%len(t.submitters)].hit(ctx, http.MethodPost, "/v1/jobs", sleep0, http.StatusAccepted)
	t.count503(err)
	return err
}

func (t *topology) count503(err error) bool {
	var he *httpError
	if errors.As(err, &he) && he.Code == http.StatusServiceUnavailable {
		t.unavailable.Add(1)
		return true
	}
	return false
}

// submitRetrying submits a sleep-0 job through the API processes in turn,
// retrying 503s (counted) a moment later, as a client honouring them does
// (without waiting the whole Retry-After, which would measure the pause).
func (t *topology) submitRetrying(ctx context.Context, i int) (string, error) {
	for {
		id, err := t.submitters[i%len(t.submitters)].submit(ctx, sleep0, "")
		if err == nil || !t.count503(err) {
			return id, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (retrying 503s; the last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// measure runs the accept window, waits for its jobs to succeed, then runs
// the end-to-end measurement.
func (t *topology) measure(ctx context.Context, o options, row *clusterRow) error {
	const completed = "WorkflowType = 'Job' AND ExecutionStatus = 'Completed'"
	row.Conc = o.clusterConc
	// Warm-up: connections, caches, the workers' sticky caches.
	var n atomic.Int64
	if _, _, err := runE2E(ctx, t.c, "Job", 40, 16, func(ctx context.Context) (string, error) {
		return t.submitRetrying(ctx, int(n.Add(1)))
	}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	t.unavailable.Store(0)

	base, err := count(ctx, t.c, completed)
	if err != nil {
		return err
	}
	logf("%s: accepts at concurrency %d for %s", row.Name, o.clusterConc, o.clusterDur)
	cpu0 := t.cpu()
	row.Accept = runLoad(ctx, loadSpec{Concurrency: o.clusterConc, Duration: o.clusterDur}, callTimeout, t.acceptOp)
	end := time.Now()
	// Jobs whose POST failed without a 503 (a timeout) may exist too: wait
	// until none runs.
	if _, err := waitCount(ctx, t.c, completed, base+int64(row.Accept.N), 5*time.Minute); err != nil {
		return fmt.Errorf("the accepted jobs did not all succeed: %w", err)
	}
	if err := waitNone(ctx, t.c, "WorkflowType = 'Job' AND ExecutionStatus = 'Running'", time.Minute); err != nil {
		return err
	}
	row.Drain = time.Since(end)
	row.CPU = t.cpu().sub(cpu0).perOp(row.Accept.N)
	if err := failed("accepts", row.Accept); err != nil && row.Accept.N == 0 {
		return err
	}

	logf("%s: %d jobs end to end, %d submitters", row.Name, o.clusterJobs, o.e2eConc)
	n.Store(0)
	row.E2E, _, err = runE2E(ctx, t.c, "Job", o.clusterJobs, o.e2eConc, func(ctx context.Context) (string, error) {
		return t.submitRetrying(ctx, int(n.Add(1)))
	})
	row.Unavailable = int(t.unavailable.Load())
	return err
}

// waitNone polls the visibility count of query until it is zero.
func waitNone(ctx context.Context, c client.Client, query string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := count(ctx, c, query)
		if err == nil && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d workflows (%s) after %s (%v)", n, query, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runCluster measures the SQLite all-in-one, then starts PostgreSQL and the
// all-in-one on it that is also the cluster's Temporal server, measures
// that all-in-one, and measures each topology of api and worker processes
// on it.
func runCluster(ctx context.Context, o options, bin, dir string, res *results) error {
	var errs []error
	keep := func(row clusterRow, err error) {
		if err != nil {
			logf("cluster phase, %s: %v", row.Name, err)
			errs = append(errs, fmt.Errorf("%s: %w", row.Name, err))
		}
		res.Cluster = append(res.Cluster, row)
	}

	keep(measureAllInOne(ctx, o, bin, filepath.Join(dir, "sqlite"), "file", 0, "SQLite all-in-one"))
	if ctx.Err() != nil {
		return errors.Join(append(errs, ctx.Err())...)
	}

	logf("cluster phase: starting a throwaway PostgreSQL")
	pg, err := pgtest.Launch()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("PostgreSQL: %w", err))...)
	}
	defer pg.Close()

	temporal, c, err := startAllInOne(ctx, bin, filepath.Join(dir, "temporal"), pg.URL("temporal"), "postgres", temporalQueue)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer func() {
		c.Close()
		if err := temporal.stop(60 * time.Second); err != nil {
			logf("%v", err)
		}
	}()

	row := clusterRow{Name: "PostgreSQL all-in-one", Postgres: true}
	t := &topology{temporal: temporal, pgPID: pg.PID(), c: c, submitters: []*api{newAPI(temporal.HTTP, 256)}}
	keep(row, t.measure(ctx, o, &row))

	for _, shape := range [][2]int{{1, 1}, {2, 1}, {1, 2}, {2, 2}} {
		if ctx.Err() != nil {
			break
		}
		row := clusterRow{Name: fmt.Sprintf("%d API × %d worker", shape[0], shape[1]), APIs: shape[0], Workers: shape[1], Postgres: true}
		if shape[1] > 1 {
			row.Name += "s"
		}
		keep(row, measureTopology(ctx, o, bin, filepath.Join(dir, fmt.Sprintf("%dx%d", shape[0], shape[1])), temporal, pg.PID(), c, &row))
	}
	return errors.Join(errs...)
}

// startAllInOne starts a jobgate all-in-one on store, with its jobs on
// queue, and dials its embedded Temporal server.
func startAllInOne(ctx context.Context, bin, dir, store, name, queue string) (*proc, client.Client, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	p, err := newProc(procSpec{Name: "all-" + name, Bin: bin, DataDir: filepath.Join(dir, "data"), LogDir: dir,
		Env: []string{"JOBGATE_ROLE=all", "JOBGATE_EMBEDDED_STORE=" + store, "JOBGATE_TASK_QUEUE=" + queue}})
	if err != nil {
		return nil, nil, err
	}
	logf("cluster phase: starting the all-in-one jobgate (%s store)", name)
	if err := p.startFirst(ctx, "/readyz", 3*time.Minute); err != nil {
		return nil, nil, err
	}
	c, err := dial(ctx, p.TemporalAddress())
	if err != nil {
		_ = p.stop(time.Minute)
		return nil, nil, err
	}
	return p, c, nil
}

// measureAllInOne measures a fresh all-in-one on store.
func measureAllInOne(ctx context.Context, o options, bin, dir, store string, pgPID int, name string) (clusterRow, error) {
	row := clusterRow{Name: name, Postgres: pgPID > 0}
	p, c, err := startAllInOne(ctx, bin, dir, store, store, temporalQueue)
	if err != nil {
		return row, err
	}
	defer func() {
		c.Close()
		if err := p.stop(60 * time.Second); err != nil {
			logf("%v", err)
		}
	}()
	t := &topology{temporal: p, pgPID: pgPID, c: c, submitters: []*api{newAPI(p.HTTP, 256)}}
	return row, t.measure(ctx, o, &row)
}

// measureTopology starts row's api and worker processes on the cluster's
// Temporal server, measures them and stops them.
func measureTopology(ctx context.Context, o options, bin, dir string, temporal *proc, pgPID int, c client.Client, row *clusterRow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	blobs := (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, "blobs"))}).String()
	t := &topology{temporal: temporal, pgPID: pgPID, c: c}
	defer func() {
		var wg sync.WaitGroup
		for _, p := range append(append([]*proc(nil), t.apis...), t.workers...) {
			wg.Go(func() {
				if err := p.stop(30 * time.Second); err != nil {
					logf("%v", err)
				}
			})
		}
		wg.Wait()
	}()
	// The API processes have data directories of their own, so they share
	// the deployment secret that keys job ids through the environment.
	secret := webhook.NewSecret()
	start := func(role string, i int) (*proc, error) {
		name := role + "-" + strconv.Itoa(i+1)
		return newProc(procSpec{Name: name, Bin: bin, DataDir: filepath.Join(dir, name), LogDir: dir, Env: []string{
			"JOBGATE_ROLE=" + role,
			"JOBGATE_DEPLOYMENT_SECRET=" + secret,
			"JOBGATE_TEMPORAL_ADDRESS=" + temporal.TemporalAddress(),
			"JOBGATE_BLOB_URL=" + blobs,
		}})
	}
	for i := range row.Workers {
		p, err := start("worker", i)
		if err != nil {
			return err
		}
		t.workers = append(t.workers, p)
	}
	for i := range row.APIs {
		p, err := start("api", i)
		if err != nil {
			return err
		}
		t.apis = append(t.apis, p)
		t.submitters = append(t.submitters, newAPI(p.HTTP, 256))
	}
	logf("%s: starting %d api and %d worker processes", row.Name, row.APIs, row.Workers)
	procs := append(append([]*proc(nil), t.workers...), t.apis...)
	startErrs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { startErrs[i] = p.startFirst(ctx, "/readyz", 2*time.Minute) })
	}
	wg.Wait()
	if err := errors.Join(startErrs...); err != nil {
		return err
	}
	return t.measure(ctx, o, row)
}

// treeCPU is the CPU time (user and system) a process and its children
// have used: its own, that of its children it has reaped, and that of its
// live children. For PostgreSQL's postmaster that is every backend, those
// still connected and those gone.
func treeCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, own, reaped, err := parseStat(string(b))
	if err != nil {
		return 0
	}
	total := own + reaped
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		ppid, own, reaped, err := parseStat(string(b))
		if err == nil && ppid == pid {
			total += own + reaped
		}
	}
	return total
}

// parseStat reads a /proc/<pid>/stat line's parent pid, the process's own
// CPU time (utime plus stime) and that of its reaped children (cutime plus
// cstime).
func parseStat(stat string) (ppid int, own, reaped time.Duration, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 15 {
		return 0, 0, 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	var v [4]int64
	for k, idx := range []int{11, 12, 13, 14} {
		if v[k], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return 0, 0, 0, fmt.Errorf("unexpected /proc stat line %q: %w", stat, err)
		}
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, 0, fmt.Errorf("unexpected /proc stat line %q: %w", stat, err)
	}
	return ppid, time.Duration(v[0]+v[1]) * clockTick, time.Duration(v[2]+v[3]) * clockTick, nil
}

// clusterMarkdown is the cluster phase's section of the report.
func (r *results) clusterMarkdown() string {
	if len(r.Cluster) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("**Cluster on PostgreSQL.** jobgate's production shape on one machine: separate `api` and `worker` processes of the built binary on a Temporal server on a throwaway PostgreSQL (fsync off), each its own OS process, beside the SQLite and PostgreSQL all-in-ones measured the same way in the same run. Accepts: `sleep 0` jobs POSTed at the concurrency shown, spread over the API processes, while the workers run them; drain is how long the last of them took to succeed after the window. End to end: jobs from the first accept to the last success. CPU is per accepted job, from the start of the accept window until the last of its jobs succeeded (its accept and its run), in each kind of process; Temporal is the process that runs the Temporal server (in an all-in-one row, the whole all-in-one). 503s are answers to submissions in both measurements. Every process shares the same two cores.\n\n")
	t := newTable("topology", "accepts/s", "p50", "p99", "drain", "end to end", "503s", "CPU per job: API / worker / Temporal / PostgreSQL", "total", "bench")
	dash := func(d time.Duration, have bool) string {
		if !have {
			return "–"
		}
		return ms(d)
	}
	for _, row := range r.Cluster {
		c := row.CPU
		split := dash(c.API, row.APIs > 0) + " / " + dash(c.Worker, row.Workers > 0) + " / " + ms(c.Temporal) + " / " + dash(c.Postgres, row.Postgres)
		t.add(row.Name, rate(row.Accept.Throughput())+fmt.Sprintf(" (c=%d)", row.Conc)+errNote(row.Accept), ms(row.Accept.P(50)), ms(row.Accept.P(99)),
			row.Drain.Round(100*time.Millisecond).String(), rate(row.E2E.Rate()), fmt.Sprint(row.Unavailable), split, ms(c.Total()), ms(c.Bench))
	}
	b.WriteString(t.markdown() + "\n")
	return b.String()
}
