package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100 values", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the maximum", ms(hundred...), 100, 100 * time.Millisecond},
		{"tiny p is the minimum", ms(hundred...), 0.001, 1 * time.Millisecond},
		{"p99 of 10 values is the maximum", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, percentile(tc.sorted, tc.p))
		})
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	s := newStats([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}, 1, 2*time.Second, errors.New("boom"))
	require.Equal(t, 3, s.N)
	require.Equal(t, []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, s.Latencies, "sorted")
	require.InDelta(t, 1.5, s.Throughput(), 1e-9)
	require.Equal(t, 2*time.Millisecond, s.P(50))
	require.Zero(t, stats{}.Throughput(), "no time, no throughput")
	require.Error(t, failed("x", s))
	require.Error(t, failed("x", stats{}), "nothing measured is a failure")
	require.NoError(t, failed("x", newStats([]time.Duration{time.Millisecond}, 0, time.Second, nil)))
}

func TestRunLoadBounds(t *testing.T) {
	t.Parallel()
	s := runLoad(context.Background(), loadSpec{Concurrency: 4, Duration: time.Minute, MaxOps: 10}, time.Second, func(context.Context, int) error { return nil })
	require.Equal(t, 10, s.N, "stops at MaxOps")

	start := time.Now()
	s = runLoad(context.Background(), loadSpec{Concurrency: 2, Duration: 50 * time.Millisecond}, time.Second, func(ctx context.Context, i int) error {
		time.Sleep(time.Millisecond)
		if i%2 == 1 {
			return errors.New("odd")
		}
		return nil
	})
	require.Less(t, time.Since(start), 5*time.Second, "stops at Duration")
	require.Positive(t, s.N)
	require.Positive(t, s.Errors)
	require.EqualError(t, s.FirstError, "odd")
}

func TestTableMarkdown(t *testing.T) {
	t.Parallel()
	tb := newTable("concurrency", "jobgate", "ratio")
	tb.add("1", "194/s", "0.89×")
	tb.add("64", "1234/s")
	want := "" +
		"| concurrency | jobgate | ratio |\n" +
		"|-------------|---------|-------|\n" +
		"| 1           | 194/s   | 0.89× |\n" +
		"| 64          | 1234/s  |       |\n"
	require.Equal(t, want, tb.markdown())
}

func TestFormats(t *testing.T) {
	t.Parallel()
	require.Equal(t, "194/s", rate(194.4))
	require.Equal(t, "43.2/s", rate(43.21))
	require.Equal(t, "4.32/s", rate(4.321))
	require.Equal(t, "2.82 ms", ms(2820*time.Microsecond))
	require.Equal(t, "27.5 ms", ms(27500*time.Microsecond))
	require.Equal(t, "506 ms", ms(506*time.Millisecond))
	require.Equal(t, "0.89×", ratio(194, 217.9))
	require.Equal(t, "–", ratio(1, 0))
	require.Equal(t, "412 MiB", mib(412<<20))
}

func TestReportSections(t *testing.T) {
	t.Parallel()
	lat := []time.Duration{time.Millisecond, 2 * time.Millisecond}
	r := &results{
		Command: "go run ./cmd/jobgate-bench",
		Accept:  []acceptRow{{Conc: 16, Jobgate: newStats(lat, 0, time.Second, nil), Raw: newStats(append(lat, lat...), 0, time.Second, nil)}},
		Chaos:   []chaosResult{{Name: "worker process", Keys: 3, Responses202: 4, Replayed: 1, Accepted: 3, Completed: 3}},
	}
	md := r.markdown()
	require.Contains(t, md, "`go run ./cmd/jobgate-bench`")
	require.Contains(t, md, "| 16          | 2.00/s")
	require.Contains(t, md, "0.50×")
	require.Regexp(t, `\| 0\.50× +\| – +\|`, md, "jobgate / raw, then no turns, no spread")
	require.NotContains(t, md, "Content cost", "no engine figures, no content cost")
	r.Accept[0].Slices = []float64{0.9, 0.7, 0.8, 1.0}
	require.Regexp(t, `\| 0\.50× +\| 0\.85× \(0\.70–1\.00×\) +\|`, r.markdown())

	r.Accept = append(r.Accept, acceptRow{Conc: 1, Raw: newStats([]time.Duration{2 * time.Millisecond}, 0, time.Second, nil),
		Engine: newStats([]time.Duration{2500 * time.Microsecond}, 0, time.Second, nil)})
	md = r.markdown()
	require.Contains(t, md, "**Content cost** (one caller")
	require.Contains(t, md, "took 2.50 ms mean against 2.00 ms, **+0.50 ms per start** (1.00× of the raw throughput)")
	require.Contains(t, md, "| worker process | 3    | 4 (1)")
	require.NotContains(t, md, "Growth", "sections without figures are left out")
}

func TestVmHWM(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "status")
	require.NoError(t, os.WriteFile(path, []byte("Name:\tjobgate\nVmPeak:\t 2000000 kB\nVmHWM:\t  421888 kB\nVmRSS:\t  300000 kB\n"), 0o644))
	n, err := vmHWM(path)
	require.NoError(t, err)
	require.EqualValues(t, 421888*1024, n)

	require.NoError(t, os.WriteFile(path, []byte("Name:\tjobgate\n"), 0o644))
	_, err = vmHWM(path)
	require.Error(t, err)
	_, err = parseKB("12 MB")
	require.Error(t, err)
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-quick", "-conc", "2,4", "-phases", "main"})
	require.NoError(t, err)
	require.Equal(t, []int{2, 4}, o.conc)
	require.Equal(t, map[string]bool{"main": true}, o.phases)
	require.Equal(t, 2*time.Second, o.duration, "quick shortens what was not set")
	require.Equal(t, []int{300, 1500}, o.growth)

	o, err = parseFlags([]string{"-quick", "-duration", "5s"})
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, o.duration, "an explicit flag wins over quick")

	o, err = parseFlags([]string{"-phases", "growth", "-growth", "70000"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"growth": true}, o.phases, "growth and memory alone")
	require.Equal(t, []int{70000}, o.growth)

	_, err = parseFlags([]string{"-phases", "main,bogus"})
	require.Error(t, err)
	_, err = parseFlags([]string{"-conc", "1,x"})
	require.Error(t, err)
	_, err = parseFlags([]string{"-stores", "disk"})
	require.Error(t, err)
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := newStats([]time.Duration{3 * time.Millisecond}, 1, time.Second, errors.New("first"))
	b := newStats([]time.Duration{time.Millisecond, 2 * time.Millisecond}, 0, time.Second, nil)
	m := merge(a, b)
	require.Equal(t, 3, m.N)
	require.Equal(t, 1, m.Errors)
	require.Equal(t, 2*time.Second, m.Elapsed)
	require.InDelta(t, 1.5, m.Throughput(), 1e-9)
	require.Equal(t, []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, m.Latencies)
	require.EqualError(t, m.FirstError, "first")
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	line := "4242 (job gate) S 1 4242 4242 0 -1 4194560 27001 0 0 0 1234 567 0 0 20 0 40 0 1000 2000000 30000 18446744073709551615\n"
	d, err := parseStatCPU(line)
	require.NoError(t, err)
	require.Equal(t, (1234+567)*10*time.Millisecond, d)
	_, err = parseStatCPU("garbage")
	require.Error(t, err)
}

// alternate runs its two operations in the order a b b a a b …, so that
// neither always goes first.
func TestAlternateOrder(t *testing.T) {
	t.Parallel()
	var order []byte
	recordFirst := func(name byte) op {
		return func(_ context.Context, i int) error {
			if i == 0 {
				order = append(order, name)
			}
			return nil
		}
	}
	spec := loadSpec{Concurrency: 1, Duration: time.Minute, MaxOps: 3}
	a, b, _, _ := alternate(context.Background(), spec, 4, recordFirst('a'), recordFirst('b'), nil)
	require.Equal(t, "abbaabba", string(order))
	require.Equal(t, 12, a.N)
	require.Equal(t, 12, b.N)

	order = nil
	s, _ := alternateN(context.Background(), spec, 3, nil, recordFirst('a'), recordFirst('b'), recordFirst('c'))
	require.Equal(t, "abccbaabc", string(order))
	require.Len(t, s, 3)
	require.Equal(t, 9, s[2].N)
}

// Each turn's ratio is of the two measurements of that turn; a turn
// whose divisor measured nothing has none.
func TestSliceRatiosAndSpread(t *testing.T) {
	t.Parallel()
	per := func(n int) stats { return stats{N: n, Elapsed: time.Second} }
	got := sliceRatios([]stats{per(8), per(9), per(5)}, []stats{per(10), {}, per(4)})
	require.InDeltaSlice(t, []float64{0.8, 1.25}, got, 1e-9)
	require.Equal(t, "1.02× (0.80–1.25×)", spread(got))
	require.Equal(t, "0.50× (0.50–0.50×)", spread([]float64{0.5}))
	require.Equal(t, "0.90× (0.80–1.00×)", spread([]float64{1.0, 0.8, 0.9}))
	require.Equal(t, "–", spread(nil))

	_, _, runs := alternateSlices(context.Background(), loadSpec{Concurrency: 1, Duration: time.Minute, MaxOps: 2}, 3, nil,
		func(context.Context, int) error { return nil }, func(context.Context, int) error { return nil })
	require.Len(t, runs, 2)
	require.Len(t, runs[0], 3, "one measurement per turn")
	require.Equal(t, 2, runs[1][2].N)
}

func TestHitChecksTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/accepted":
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			w.Header().Set("Location", "/v1/jobs/1")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"1"}`))
		case "/no-location":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"1"}`))
		case "/empty":
		default:
			http.Error(w, "nope", http.StatusTeapot)
		}
	}))
	defer srv.Close()
	a := newAPI(srv.URL, 4)
	ctx := context.Background()
	require.NoError(t, a.hit(ctx, http.MethodPost, "/accepted", `{}`, http.StatusAccepted))
	require.ErrorContains(t, a.hit(ctx, http.MethodPost, "/no-location", `{}`, http.StatusAccepted), "without a Location")
	require.ErrorContains(t, a.hit(ctx, http.MethodGet, "/empty", "", http.StatusOK), "empty body")
	var he *httpError
	require.ErrorAs(t, a.hit(ctx, http.MethodGet, "/other", "", http.StatusOK), &he)
	require.Equal(t, http.StatusTeapot, he.Code)
	require.Equal(t, "nope", he.Body)
}

func TestSumCounter(t *testing.T) {
	t.Parallel()
	text := `# HELP temporal_request temporal_request counter
# TYPE temporal_request counter
temporal_request{client_name="temporal_go",namespace="default",operation="DescribeWorkflowExecution",task_queue="_unknown_"} 12
temporal_request{client_name="temporal_go",namespace="default",operation="StartWorkflowExecution",task_queue="_unknown_"} 5
temporal_request_total{namespace="other",operation="DescribeWorkflowExecution"} 3
temporal_request_latency_bucket{operation="DescribeWorkflowExecution",le="0.1"} 99
`
	got, err := sumCounter(strings.NewReader(text), "temporal_request", `operation="DescribeWorkflowExecution"`)
	require.NoError(t, err)
	require.Equal(t, 15.0, got)
	got, err = sumCounter(strings.NewReader("# nothing yet\n"), "temporal_request", `operation="DescribeWorkflowExecution"`)
	require.NoError(t, err)
	require.Zero(t, got)
}

func TestParseStatParentAndReaped(t *testing.T) {
	t.Parallel()
	line := "4242 (postgres: wal writer) S 77 4242 4242 0 -1 4194560 27001 0 0 0 1234 567 89 11 20 0 40 0 1000 2000000 30000 18446744073709551615\n"
	ppid, own, reaped, err := parseStat(line)
	require.NoError(t, err)
	require.Equal(t, 77, ppid)
	require.Equal(t, (1234+567)*10*time.Millisecond, own)
	require.Equal(t, (89+11)*10*time.Millisecond, reaped)
	_, _, _, err = parseStat("4242 (x) S 1 2")
	require.Error(t, err)
}

// treeCPU counts a child's CPU time with its parent's: this test process
// burns CPU in a child shell and finds it under its own pid.
func TestTreeCPUCountsChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	self := os.Getpid()
	before := treeCPU(self)
	deadline := time.Now().Add(20 * time.Second)
	for treeCPU(self)-before < 200*time.Millisecond {
		require.True(t, time.Now().Before(deadline), "the child's CPU time never showed under its parent")
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterReport(t *testing.T) {
	t.Parallel()
	r := &results{Cluster: []clusterRow{
		{Name: "SQLite all-in-one", Conc: 64, Accept: newStats([]time.Duration{time.Millisecond}, 0, time.Second, nil), CPU: clusterCPU{Temporal: 3 * time.Millisecond}},
		{Name: "2 API × 2 workers", APIs: 2, Workers: 2, Postgres: true, Conc: 64, Unavailable: 3,
			Accept: newStats([]time.Duration{time.Millisecond, time.Millisecond}, 3, time.Second, nil),
			CPU:    clusterCPU{API: time.Millisecond, Worker: 2 * time.Millisecond, Temporal: 3 * time.Millisecond, Postgres: 4 * time.Millisecond}},
	}}
	md := r.markdown()
	require.Contains(t, md, "Cluster on PostgreSQL")
	require.Contains(t, md, "– / – / 3.00 ms / –", "an all-in-one has no API, worker or PostgreSQL column of its own")
	require.Regexp(t, `1.00 ms / 2.00 ms / 3.00 ms / 4.00 ms +\| 10.0 ms`, md)
	require.Contains(t, md, "2.00/s (c=64) (3 errors)")
	require.Regexp(t, `\| 0.00/s +\| 3 +\|`, md, "503s counted")
}

// The report's "Measured with" line can be pasted into a shell: an empty
// argument stays an argument.
func TestShellWords(t *testing.T) {
	got := shellWords([]string{"-jobgate", "./jobgate", "-chart", "", "-phases", "main,sync", "-x", "a b"})
	want := `-jobgate ./jobgate -chart "" -phases main,sync -x "a b"`
	if got != want {
		t.Errorf("shellWords = %s, want %s", got, want)
	}
}
