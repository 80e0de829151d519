package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// results is every figure of a run.
type results struct {
	Command string
	Began   time.Time
	Took    time.Duration
	Quick   bool

	Accept     []acceptRow
	StatusConc int
	Status     []statusRow
	E2E        *e2eRow
	Growth     []growthRow
	PeakRSS    int64
	Workflows  int
	DBBytes    int64
	Stores     []storeRow
	Sync       []syncRow
	// StepEnd is from a pipeline step's end to a long-poll's answer that
	// shows it (sync phase).
	StepEnd  stats
	Cluster  []clusterRow
	Chaos    []chaosResult
	Watchers []watchersRow
}

type acceptRow struct {
	Conc         int
	Jobgate, Raw stats
	// Engine is jobgate's engine called in the bench's process: a job's
	// start without the HTTP layer.
	Engine stats
	// CPU time per operation in each process.
	CPUJobgate, CPURaw, CPUEngine cpuUse
	// Slices are jobgate / raw in each of the window's slices.
	Slices []float64
}

type statusRow struct {
	What         string
	Jobs         int
	Jobgate, Raw stats
}

type e2eRow struct {
	Conc         int
	Jobgate, Raw e2e
	// The history of one job and of one raw workflow of the measurement.
	JobgateHistory, RawHistory historyCounts
}

type growthRow struct {
	Accumulated               int
	Accept, Running, Finished stats
	// Fill is the accumulation that led here (zero for the first point).
	Fill stats
}

type storeRow struct {
	Store              string
	Conc               int
	RawStarts, Accept  stats
	JobgateE2E, RawE2E e2e
	// CPU time of the all-in-one process per raw start, per accept (the
	// server's share: the API is another process) and per job end to end
	// (API, worker and server).
	CPUStart, CPUAccept, CPUE2E time.Duration
}

// table is a Markdown table.
type table struct {
	header []string
	rows   [][]string
}

func newTable(header ...string) *table { return &table{header: header} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// markdown renders the table; cells are padded to the column width (in
// runes, as fmt pads) so the source reads as a table too.
func (t *table) markdown() string {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(width) {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			fmt.Fprintf(&b, " %-*s |", width[i], c)
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for _, w := range width {
		b.WriteString(strings.Repeat("-", w+2) + "|")
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// rate formats operations per second.
func rate(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f/s", v)
	case v >= 10:
		return fmt.Sprintf("%.1f/s", v)
	default:
		return fmt.Sprintf("%.2f/s", v)
	}
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// ratio formats a/b as a multiple.
func ratio(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// spread formats ratios as their median and range: "0.86× (0.78–0.93×)".
func spread(ratios []float64) string {
	if len(ratios) == 0 {
		return "–"
	}
	sorted := slices.Sorted(slices.Values(ratios))
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f×)", median, sorted[0], sorted[n-1])
}

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// contentCost is the paragraph on what a job carries beyond a bare start,
// from the lowest concurrency measured (a single caller, by default): the
// engine's start against the raw one, in mean latency and throughput, so
// it is published as measured rather than left to a ratio column.
func contentCost(rows []acceptRow) string {
	var a *acceptRow
	for i := range rows {
		if rows[i].Engine.N > 0 && rows[i].Raw.N > 0 && (a == nil || rows[i].Conc < a.Conc) {
			a = &rows[i]
		}
	}
	if a == nil {
		return ""
	}
	eng, raw := a.Engine.Mean(), a.Raw.Mean()
	callers := fmt.Sprintf("%d callers", a.Conc)
	if a.Conc == 1 {
		callers = "one caller"
	}
	return fmt.Sprintf("**Content cost** (%s, engine against raw, no HTTP on either side): a job's start — the memo (tenant, creation time, expected duration, request id, priority), the search attributes JobTenant, JobKind and JobState, the Web UI summary and the job's workflow input, against a bare start with no argument — took %s mean against %s, **%+.2f ms per start** (%s of the raw throughput); the server's CPU per start was %s against %s (%+.2f ms).\n\n",
		callers, ms(eng), ms(raw), float64(eng-raw)/float64(time.Millisecond), ratio(a.Engine.Throughput(), a.Raw.Throughput()),
		ms(a.CPUEngine.Server), ms(a.CPURaw.Server), float64(a.CPUEngine.Server-a.CPURaw.Server)/float64(time.Millisecond))
}

// errNote is a footnote for failed calls, or empty.
func errNote(s stats) string {
	if s.Errors == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d errors)", s.Errors)
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured with `%s` (%s, %s in all).\n\n", r.Command, r.Began.UTC().Format("2006-01-02"), r.Took.Round(time.Second))
	if r.Quick {
		b.WriteString("**Quick smoke run: small counts, figures are indicative only.**\n\n")
	}

	if len(r.Accept) > 0 {
		b.WriteString("**1. Accept path.** `POST /v1/jobs` (a `sleep` job) against plain SDK `StartWorkflow` on the same server, closed loop; all start workflows on task queues nobody polls, so execution does not compete with the starts. The third measurement is jobgate's engine, the code behind the POST (kind and input checks, the job's memo, search attributes and summary), called in the bench's own process on its SDK client: the same job's start without the HTTP layer. So jobgate / engine is what the HTTP layer costs, and engine / raw what a job carries beyond a bare start: a ceiling on jobgate / raw, since a POST does all the engine does. The bench's HTTP client checks each answer's status code and Location and reads its body without decoding it, as load generators do; the SDK client decodes its answers as part of the call.\n\n")
		t := newTable("concurrency", "jobgate accepts", "p50", "p99", "raw SDK starts", "p50", "p99", "jobgate / raw", "by turn: median, range", "engine, no HTTP", "jobgate / engine", "engine / raw")
		for _, a := range r.Accept {
			t.add(fmt.Sprint(a.Conc), rate(a.Jobgate.Throughput())+errNote(a.Jobgate), ms(a.Jobgate.P(50)), ms(a.Jobgate.P(99)),
				rate(a.Raw.Throughput())+errNote(a.Raw), ms(a.Raw.P(50)), ms(a.Raw.P(99)), ratio(a.Jobgate.Throughput(), a.Raw.Throughput()), spread(a.Slices),
				rate(a.Engine.Throughput())+errNote(a.Engine), ratio(a.Jobgate.Throughput(), a.Engine.Throughput()), ratio(a.Engine.Throughput(), a.Raw.Throughput()))
		}
		b.WriteString(t.markdown() + "\n")
		b.WriteString("By turn: the window is measured in turns (raw, jobgate, engine, then the reverse order, and so on); the median and range of jobgate / raw over the turns say how far the figure moves within the run.\n\n")
		b.WriteString(contentCost(r.Accept))
		b.WriteString("CPU time per operation in each process (/proc and getrusage): the server is the all-in-one jobgate with the embedded Temporal server, the API the api-role jobgate the POSTs go to (idle otherwise), the bench the load tool with its HTTP client (jobgate) or its SDK client (raw, engine). The two cores are shared by all three, so throughput follows the total.\n\n")
		t = newTable("concurrency", "jobgate: server / API / bench", "total", "raw: server / API / bench", "total", "engine: server / API / bench", "total")
		split := func(c cpuUse) string { return ms(c.Server) + " / " + ms(c.API) + " / " + ms(c.Bench) }
		for _, a := range r.Accept {
			j, w, e := a.CPUJobgate, a.CPURaw, a.CPUEngine
			t.add(fmt.Sprint(a.Conc), split(j), ms(j.Total()), split(w), ms(w.Total()), split(e), ms(e.Total()))
		}
		b.WriteString(t.markdown() + "\n")
	}

	if len(r.Status) > 0 {
		fmt.Fprintf(&b, "**2. Status.** `GET /v1/jobs/{id}` against plain SDK `DescribeWorkflowExecution` of the same workflows, %d callers.\n\n", r.StatusConc)
		t := newTable("jobs", "jobgate GETs", "p50", "p99", "raw Describes", "p50", "p99", "jobgate / raw")
		for _, s := range r.Status {
			t.add(fmt.Sprintf("%s (%d)", s.What, s.Jobs), rate(s.Jobgate.Throughput())+errNote(s.Jobgate), ms(s.Jobgate.P(50)), ms(s.Jobgate.P(99)),
				rate(s.Raw.Throughput())+errNote(s.Raw), ms(s.Raw.P(50)), ms(s.Raw.P(99)), ratio(s.Jobgate.Throughput(), s.Raw.Throughput()))
		}
		b.WriteString(t.markdown() + "\n")
	}

	if e := r.E2E; e != nil {
		fmt.Fprintf(&b, "**3. End to end.** %d `sleep 0` jobs submitted to the all-in-one by %d callers, from the first start to the last completion, against %d plain workflows with one no-op activity run by an SDK worker on the same server.\n\n", e.Jobgate.Jobs, e.Conc, e.Raw.Jobs)
		t := newTable("", "completed/s", "span", "submit p50", "submit p99")
		t.add("jobgate `sleep 0`", rate(e.Jobgate.Rate()), e.Jobgate.Span.Round(100*time.Millisecond).String(), ms(e.Jobgate.Submit.P(50)), ms(e.Jobgate.Submit.P(99)))
		t.add("raw workflow + activity", rate(e.Raw.Rate()), e.Raw.Span.Round(100*time.Millisecond).String(), ms(e.Raw.Submit.P(50)), ms(e.Raw.Submit.P(99)))
		t.add("jobgate / raw", ratio(e.Jobgate.Rate(), e.Raw.Rate()), "", "", "")
		b.WriteString(t.markdown() + "\n")
		if e.JobgateHistory.Events > 0 {
			b.WriteString("What one workflow of each side recorded (`GetWorkflowHistory` of a sample; each search-attribute upsert is one more write of the visibility record):\n\n")
			t := newTable("", "history events", "search-attribute upserts", "markers", "workflow tasks", "activity tasks")
			for _, h := range []struct {
				name string
				c    historyCounts
			}{{"jobgate `sleep 0`", e.JobgateHistory}, {"raw workflow + activity", e.RawHistory}} {
				t.add(h.name, fmt.Sprint(h.c.Events), fmt.Sprint(h.c.Upserts), fmt.Sprint(h.c.Markers), fmt.Sprint(h.c.WorkflowTasks), fmt.Sprint(h.c.ActivityTasks))
			}
			b.WriteString(t.markdown() + "\n")
		}
	}

	if len(r.Growth) > 0 {
		c := r.StatusConc
		fmt.Fprintf(&b, "**4. Growth.** Accept and status latency (%d callers each) as jobs accumulate in the store; the accumulated jobs are accepted but never run (a task queue nobody polls), so the store holds their workflows, histories, visibility rows and pending tasks.\n\n", c)
		t := newTable("accumulated", "accepts", "accept p50", "accept p99", "GET running p50", "p99", "GET finished p50", "p99", "accumulating took")
		for _, g := range r.Growth {
			took := "–"
			if g.Fill.N > 0 {
				took = fmt.Sprintf("%s for %d (%s)", g.Fill.Elapsed.Round(time.Second), g.Fill.N, rate(g.Fill.Throughput()))
			}
			t.add(fmt.Sprint(g.Accumulated), rate(g.Accept.Throughput()), ms(g.Accept.P(50)), ms(g.Accept.P(99)),
				ms(g.Running.P(50)), ms(g.Running.P(99)), ms(g.Finished.P(50)), ms(g.Finished.P(99)), took)
		}
		b.WriteString(t.markdown() + "\n")
	}

	if r.PeakRSS > 0 {
		fmt.Fprintf(&b, "**5. Peak memory** of the all-in-one process (VmHWM) over the run above: **%s**, holding %d workflows", mib(r.PeakRSS), r.Workflows)
		if r.DBBytes > 0 {
			fmt.Fprintf(&b, " in a %s SQLite file", mib(r.DBBytes))
		}
		// The subprocesses inherit the bench's environment.
		cache := os.Getenv("JOBGATE_EMBEDDED_HISTORY_CACHE")
		if cache == "" {
			cache = "1024, the default"
		}
		fmt.Fprintf(&b, ", with `JOBGATE_EMBEDDED_HISTORY_CACHE` = %s (the embedded server's mutable-state cache, in workflows)", cache)
		b.WriteString(".\n\n")
	}

	b.WriteString(r.syncMarkdown())

	if len(r.Stores) > 0 {
		b.WriteString("**6. Embedded store.** The default durable SQLite file against in-memory SQLite (`JOBGATE_EMBEDDED_STORE=memory`), each on a fresh all-in-one; starts and accepts measured in turns, then end-to-end `sleep 0` jobs and raw workflows. Server CPU is the all-in-one process's CPU time per operation.\n\n")
		t := newTable("store", "raw SDK starts", "jobgate accepts", "jobgate end to end", "raw end to end", "server CPU per start / accept / job")
		var file, memory *storeRow
		for i, s := range r.Stores {
			conc := fmt.Sprintf(" (c=%d)", s.Conc)
			t.add(s.Store, rate(s.RawStarts.Throughput())+conc, rate(s.Accept.Throughput())+conc, rate(s.JobgateE2E.Rate()), rate(s.RawE2E.Rate()),
				ms(s.CPUStart)+" / "+ms(s.CPUAccept)+" / "+ms(s.CPUE2E))
			switch s.Store {
			case "file":
				file = &r.Stores[i]
			case "memory":
				memory = &r.Stores[i]
			}
		}
		if file != nil && memory != nil {
			t.add("file / memory", ratio(file.RawStarts.Throughput(), memory.RawStarts.Throughput()), ratio(file.Accept.Throughput(), memory.Accept.Throughput()),
				ratio(file.JobgateE2E.Rate(), memory.JobgateE2E.Rate()), ratio(file.RawE2E.Rate(), memory.RawE2E.Rate()),
				ratio(float64(file.CPUStart), float64(memory.CPUStart))+" / "+ratio(float64(file.CPUAccept), float64(memory.CPUAccept))+" / "+ratio(float64(file.CPUE2E), float64(memory.CPUE2E)))
		}
		b.WriteString(t.markdown() + "\n")
	}

	b.WriteString(r.clusterMarkdown())

	if len(r.Chaos) > 0 {
		b.WriteString("**Chaos.** Steady load of short `sleep` jobs with Idempotency-Keys (each retried until a 202), SIGKILL mid-load, restart on the same data, then every accepted job polled to the end and checked in Temporal: exactly one workflow execution per job, completed.\n\n")
		t := newTable("killed", "keys", "202s returned (replays)", "jobs accepted", "completed", "lost", "duplicated", "retried (attempt > 1)", "down for")
		for _, c := range r.Chaos {
			t.add(c.Name, fmt.Sprint(c.Keys), fmt.Sprintf("%d (%d)", c.Responses202, c.Replayed), fmt.Sprint(c.Accepted), fmt.Sprint(c.Completed),
				fmt.Sprint(c.Lost), fmt.Sprint(c.Duplicated), fmt.Sprint(c.Retried), c.Downtime.Round(100*time.Millisecond).String())
		}
		b.WriteString(t.markdown() + "\n")
	}
	b.WriteString(r.watchersMarkdown())
	return b.String()
}
