// Command jobgate-bench measures jobgate against raw Temporal on one
// embedded Temporal server: the accept path (POST /v1/jobs) next to plain
// SDK starts and to jobgate's engine called without HTTP, status reads next to plain DescribeWorkflowExecution, jobs
// completed end to end next to plain workflows with one activity, the
// completion path (a waiting POST, and a job's end reaching a long-poll and
// an event stream) next to ExecuteWorkflow + Get, latency
// as jobs accumulate, peak memory, the durable SQLite store against an
// in-memory one, and a chaos run that SIGKILLs the worker and the whole
// all-in-one process under load and checks that no accepted job is lost or
// run twice, and what open event streams cost Temporal and other tenants
// (watchers.go).
//
// It runs a built jobgate binary as subprocesses on loopback ports and
// prints a Markdown report on standard output (progress goes to standard
// error) and a chart as PNG (docs/bench.png):
//
//	go build -o jobgate ./cmd/jobgate
//	go run ./cmd/jobgate-bench -jobgate ./jobgate > bench.md   # about 10 minutes on 2 cores
//	go run ./cmd/jobgate-bench -quick                          # a smoke run of about 2 minutes
//	go run ./cmd/jobgate-bench -jobgate ./jobgate -phases main -accept-only -chart ""   # the accept path alone, about 4 minutes
//
// -api-pprof serves the api-role jobgate's profiler, to profile the accept
// path while its windows run.
//
// -phases growth runs the main phase's growth and peak memory alone (its
// warm-up, then jobs accumulated up to each -growth point, 70,000 by
// default, on a task queue nobody polls):
//
//	go run ./cmd/jobgate-bench -jobgate ./jobgate -phases growth -chart ""
//
// -all-pprof serves the all-in-one's profiler (its heap, during growth).
//
// -store-before names a second binary (say, one built before a change to
// devserver) whose file store is measured beside the current one.
//
// It exits non-zero if a phase fails or the chaos run loses or duplicates
// a job.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the bench's flags.
type options struct {
	jobgate string
	quick   bool
	// acceptOnly limits the main phase to its warm-up and the accept-path
	// windows; apiPprof is the api-role jobgate's profiler address.
	acceptOnly bool
	apiPprof   string
	phases     map[string]bool
	conc       []int
	duration   time.Duration
	statusConc int
	warmJobs   int
	e2eJobs    int
	e2eConc    int
	growth     []int
	fillConc   int
	fillMax    time.Duration
	storeDur   time.Duration
	storeJobs  int
	stores     []string
	before     string
	chaosRate  float64
	chaosKill  time.Duration
	chaosAfter time.Duration
	chart      string
	keep       bool
	timeout    time.Duration
	sync       syncOptions
	watch      watchOptions

	// The cluster phase's (cluster.go).
	clusterConc int
	clusterDur  time.Duration
	clusterJobs int
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("jobgate-bench", flag.ContinueOnError)
	var o options
	var phases, conc, growth string
	fs.StringVar(&o.jobgate, "jobgate", "", "path of the jobgate binary (default: ./jobgate if present, else built once with go build ./cmd/jobgate)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: small counts and short windows (a couple of minutes)")
	fs.StringVar(&phases, "phases", "main,sync,store,chaos,watchers,cluster", "phases to run: main (accept, status, end to end, growth, memory), growth (the main phase's growth and memory alone, after its warm-up; implied by main), sync (waiting POST, long-poll and stream at a job's end), store (file vs memory SQLite), chaos, watchers (SSE streams' Temporal cost), cluster (api and worker processes on Temporal on PostgreSQL)")
	fs.StringVar(&conc, "conc", "1,16,64", "accept-path concurrencies")
	fs.BoolVar(&o.acceptOnly, "accept-only", false, "main phase: only the warm-up and the accept-path windows (no growth, status, end to end or memory); with -phases main, table 1 in a few minutes")
	fs.StringVar(&allPprof, "all-pprof", "", "serve the all-in-one jobgate's profiler (JOBGATE_PPROF_ADDR) at this address, e.g. 127.0.0.1:6060, for heap profiles during a run: go tool pprof http://127.0.0.1:6060/debug/pprof/heap")
	fs.StringVar(&o.apiPprof, "api-pprof", "", "serve the profiler of the api-role jobgate the accept windows POST to at this address (JOBGATE_PPROF_ADDR), e.g. 127.0.0.1:6061, to profile the accept path: go tool pprof -seconds 30 http://127.0.0.1:6061/debug/pprof/profile")
	fs.DurationVar(&o.duration, "duration", 16*time.Second, "window of each accept and status measurement")
	fs.IntVar(&o.statusConc, "status-conc", 16, "concurrency of status reads and of the growth probes")
	fs.IntVar(&o.warmJobs, "warm-jobs", 300, "sleep-0 jobs run first: warm-up, and the finished jobs status reads use")
	fs.IntVar(&o.e2eJobs, "e2e-jobs", 1000, "jobs (and raw workflows) of the end-to-end measurement")
	fs.IntVar(&o.e2eConc, "e2e-conc", 16, "submitters of the end-to-end measurement")
	fs.StringVar(&growth, "growth", "1000,70000", "accumulated jobs at which accept and status latency are probed")
	fs.IntVar(&o.fillConc, "fill-conc", 64, "concurrency of the submissions that accumulate jobs")
	fs.DurationVar(&o.fillMax, "fill-max", 12*time.Minute, "bound on accumulating jobs up to the last growth point")
	fs.DurationVar(&o.storeDur, "store-duration", 8*time.Second, "window of each start measurement in the store comparison")
	fs.IntVar(&o.storeJobs, "store-jobs", 500, "end-to-end jobs per store in the store comparison")
	var stores string
	fs.StringVar(&o.before, "store-before", "", "optional second jobgate binary (e.g. one built before a change to devserver) whose file store the store phase measures too, as \"file (before)\"")
	fs.StringVar(&stores, "stores", "file,memory", "embedded stores the store phase compares: file, memory, postgres://… (JOBGATE_EMBEDDED_STORE)")
	fs.Float64Var(&o.chaosRate, "chaos-rate", 20, "chaos load: new jobs per second")
	fs.DurationVar(&o.chaosKill, "chaos-kill-after", 10*time.Second, "chaos: load before each SIGKILL")
	fs.DurationVar(&o.chaosAfter, "chaos-run-after", 10*time.Second, "chaos: load after the restarted process is ready")
	fs.IntVar(&o.clusterConc, "cluster-conc", 64, "cluster: concurrency of the accept window")
	fs.DurationVar(&o.clusterDur, "cluster-duration", 8*time.Second, "cluster: accept window of each topology")
	fs.IntVar(&o.clusterJobs, "cluster-jobs", 400, "cluster: end-to-end jobs of each topology")
	fs.StringVar(&o.chart, "chart", "docs/bench.png", "PNG chart to write (empty: none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run directory (data and subprocess logs)")
	fs.DurationVar(&o.timeout, "timeout", 40*time.Minute, "bound on the whole run")
	o.sync.register(fs)
	o.watch.streams = []int{1, 100, 500}
	watchFlags(fs, &o.watch)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "main", "growth", "sync", "store", "chaos", "watchers", "cluster":
			o.phases[p] = true
		case "":
		default:
			return o, fmt.Errorf("-phases: unknown phase %q (main, growth, sync, store, chaos, watchers, cluster)", p)
		}
	}
	var err error
	for _, st := range strings.Split(stores, ",") {
		switch st = strings.TrimSpace(st); st {
		case "file", "memory":
			o.stores = append(o.stores, st)
		default:
			// The all-in-one on PostgreSQL (JOBGATE_EMBEDDED_STORE=postgres://…).
			if strings.HasPrefix(st, "postgres://") || strings.HasPrefix(st, "postgresql://") {
				o.stores = append(o.stores, st)
				continue
			}
			return o, fmt.Errorf("-stores: unknown store %q (file, memory, or a postgres:// URL)", st)
		}
	}
	if o.conc, err = parseInts(conc); err != nil {
		return o, fmt.Errorf("-conc: %w", err)
	}
	if o.growth, err = parseInts(growth); err != nil {
		return o, fmt.Errorf("-growth: %w", err)
	}
	if err := o.sync.parse(fs, o.quick); err != nil {
		return o, err
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { o.duration = 2 * time.Second })
		def("warm-jobs", func() { o.warmJobs = 50 })
		def("e2e-jobs", func() { o.e2eJobs = 100 })
		def("growth", func() { o.growth = []int{300, 1500} })
		def("store-duration", func() { o.storeDur = 2 * time.Second })
		def("store-jobs", func() { o.storeJobs = 60 })
		def("chaos-kill-after", func() { o.chaosKill = 4 * time.Second })
		def("chaos-run-after", func() { o.chaosAfter = 3 * time.Second })
		def("chaos-rate", func() { o.chaosRate = 10 })
		watchQuick(&o.watch, set)
		def("cluster-duration", func() { o.clusterDur = 2 * time.Second })
		def("cluster-jobs", func() { o.clusterJobs = 60 })
		def("chart", func() { o.chart = filepath.Join(os.TempDir(), "jobgate-bench-quick.png") })
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a comma-separated list of positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "jobgate-bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "jobgate-bench:", err)
		os.Exit(1)
	}
}

// logf reports progress on standard error.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "jobgate-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("run directory (kept): %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin, err := findBinary(o.jobgate, dir)
	if err != nil {
		return err
	}
	r := &results{Command: "go run ./cmd/jobgate-bench " + shellWords(os.Args[1:]), Began: time.Now(), Quick: o.quick}
	r.Command = strings.TrimSpace(r.Command)

	var failures []error
	if o.phases["main"] {
		if err := runMain(ctx, o, bin, filepath.Join(dir, "main"), r, false); err != nil {
			failures = append(failures, fmt.Errorf("main phase: %w", err))
		}
	} else if o.phases["growth"] {
		if err := runMain(ctx, o, bin, filepath.Join(dir, "growth"), r, true); err != nil {
			failures = append(failures, fmt.Errorf("growth phase: %w", err))
		}
	}
	if o.phases["sync"] && ctx.Err() == nil {
		if err := runSync(ctx, o, bin, filepath.Join(dir, "sync"), r); err != nil {
			failures = append(failures, fmt.Errorf("sync phase: %w", err))
		}
	}
	if o.phases["store"] && ctx.Err() == nil {
		before := ""
		if o.before != "" {
			if before, err = filepath.Abs(o.before); err != nil {
				return err
			}
		}
		if err := runStores(ctx, o, bin, before, filepath.Join(dir, "store"), r); err != nil {
			failures = append(failures, fmt.Errorf("store phase: %w", err))
		}
	}
	if o.phases["chaos"] && ctx.Err() == nil {
		if err := runChaos(ctx, o, bin, filepath.Join(dir, "chaos"), r); err != nil {
			failures = append(failures, fmt.Errorf("chaos phase: %w", err))
		}
	}
	if o.phases["watchers"] && ctx.Err() == nil {
		if err := runWatchers(ctx, o, bin, filepath.Join(dir, "watchers"), r); err != nil {
			failures = append(failures, fmt.Errorf("watchers phase: %w", err))
		}
	}
	if o.phases["cluster"] && ctx.Err() == nil {
		if err := runCluster(ctx, o, bin, filepath.Join(dir, "cluster"), r); err != nil {
			failures = append(failures, fmt.Errorf("cluster phase: %w", err))
		}
	}
	r.Took = time.Since(r.Began)
	fmt.Print(r.markdown())
	if o.chart != "" {
		if err := writeChart(r, o.chart); errors.Is(err, errNothingToDraw) {
			logf("no chart: the phases run have none")
		} else if err != nil {
			failures = append(failures, fmt.Errorf("chart: %w", err))
		} else {
			logf("chart written to %s", o.chart)
		}
	}
	for _, c := range r.Chaos {
		if c.Lost > 0 || c.Duplicated > 0 {
			failures = append(failures, fmt.Errorf("chaos %s: %d lost, %d duplicated", c.Name, c.Lost, c.Duplicated))
		}
	}
	return errors.Join(failures...)
}

// findBinary returns the jobgate binary to run: the flag's, ./jobgate, or
// one built into dir.
func findBinary(flagged, dir string) (string, error) {
	if flagged != "" {
		p, err := filepath.Abs(flagged)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("-jobgate %s: %w", flagged, err)
		}
		return p, nil
	}
	if st, err := os.Stat("jobgate"); err == nil && !st.IsDir() {
		return filepath.Abs("jobgate")
	}
	out := filepath.Join(dir, "jobgate")
	logf("building ./cmd/jobgate into %s (the first build takes minutes)", out)
	cmd := exec.Command("go", "build", "-o", out, "./cmd/jobgate")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/jobgate (run the bench from the repository root, or pass -jobgate): %w", err)
	}
	return out, nil
}

// shellWords writes args as a shell would need them typed: an empty
// argument (-chart "") as "", one with spaces or quotes quoted.
func shellWords(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$`\\|&;<>()*?[]#~") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
