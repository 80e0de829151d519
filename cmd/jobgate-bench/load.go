package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stats summarises one measurement: how many operations succeeded in how
// long, and their latencies.
type stats struct {
	// N is the number of successful operations.
	N int
	// Errors is the number of failed operations.
	Errors int
	// Elapsed is from the first operation's start to the last one's end.
	Elapsed time.Duration
	// Latencies of the successful operations, sorted.
	Latencies []time.Duration
	// FirstError is the first failure, for the log.
	FirstError error
}

// Throughput is successful operations per second.
func (s stats) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.N) / s.Elapsed.Seconds()
}

// Mean is the mean latency of the successful operations.
func (s stats) Mean() time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.Latencies {
		sum += d
	}
	return sum / time.Duration(len(s.Latencies))
}

// P is the p-th percentile latency (0 < p <= 100).
func (s stats) P(p float64) time.Duration { return percentile(s.Latencies, p) }

// percentile is the nearest-rank p-th percentile of sorted (0 < p <= 100);
// zero for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// newStats sorts the latencies and wraps them.
func newStats(lat []time.Duration, errs int, elapsed time.Duration, firstErr error) stats {
	slices.Sort(lat)
	return stats{N: len(lat), Errors: errs, Elapsed: elapsed, Latencies: lat, FirstError: firstErr}
}

// loadSpec is a closed-loop load: Concurrency callers, each calling op
// again as soon as its last call returns, until Duration has passed or
// MaxOps calls were made (0: no count limit), whichever comes first.
type loadSpec struct {
	Concurrency int
	Duration    time.Duration
	MaxOps      int
}

// op is one operation; i numbers the calls of one run from 0.
type op func(ctx context.Context, i int) error

// runLoad runs spec with op and measures it. Every call gets its own
// deadline, so a stuck server cannot stall the run past Duration plus
// callTimeout.
func runLoad(ctx context.Context, spec loadSpec, callTimeout time.Duration, f op) stats {
	if spec.Concurrency < 1 {
		spec.Concurrency = 1
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(spec.Duration)
	for range spec.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var nerr int
			var ferr error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if spec.MaxOps > 0 && i >= spec.MaxOps {
					break
				}
				cctx, cancel := context.WithTimeout(ctx, callTimeout)
				t0 := time.Now()
				err := f(cctx, i)
				d := time.Since(t0)
				cancel()
				if err != nil {
					nerr++
					if ferr == nil {
						ferr = err
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return newStats(all, errs, time.Since(start), firstErr)
}

// merge combines measurements of the same operation taken one after the
// other: counts and time add up, latencies pool.
func merge(ss ...stats) stats {
	var lat []time.Duration
	var out stats
	for _, s := range ss {
		lat = append(lat, s.Latencies...)
		out.Errors += s.Errors
		out.Elapsed += s.Elapsed
		if out.FirstError == nil {
			out.FirstError = s.FirstError
		}
	}
	return newStats(lat, out.Errors, out.Elapsed, out.FirstError)
}

// alternate measures a and b in turns, slices windows each, in the order
// a b b a a b …, so that neither always runs first: what one leaves behind
// (the server's asynchronous work, such as visibility writes, a window
// of starts queues) falls on the other as often as on itself, and a drift
// in the machine's load hits both alike. It returns the pooled
// measurements and, with a meter (the CPU time the processes have used so
// far), the CPU time spent during each.
func alternate(ctx context.Context, spec loadSpec, slices int, a, b op, meter func() cpuUse) (sa, sb stats, cpuA, cpuB cpuUse) {
	s, cpu := alternateN(ctx, spec, slices, meter, a, b)
	return s[0], s[1], cpu[0], cpu[1]
}

// alternateN is alternate for any number of operations: in each slice they
// run in order, then in reverse order in the next (a b c c b a a b c …).
func alternateN(ctx context.Context, spec loadSpec, slices int, meter func() cpuUse, ops ...op) ([]stats, []cpuUse) {
	pooled, cpu, _ := alternateSlices(ctx, spec, slices, meter, ops...)
	return pooled, cpu
}

// alternateSlices is alternateN that also returns each operation's
// measurement of every slice (runs[op][slice]), whose spread says how much
// the figures move within one run.
func alternateSlices(ctx context.Context, spec loadSpec, slices int, meter func() cpuUse, ops ...op) (pooled []stats, cpu []cpuUse, runs [][]stats) {
	slices = max(slices, 1)
	spec.Duration /= time.Duration(slices)
	if meter == nil {
		meter = func() cpuUse { return cpuUse{} }
	}
	runs = make([][]stats, len(ops))
	cpu = make([]cpuUse, len(ops))
	for i := range slices {
		for k := range ops {
			if i%2 == 1 {
				k = len(ops) - 1 - k
			}
			t0 := meter()
			runs[k] = append(runs[k], runLoad(ctx, spec, callTimeout, ops[k]))
			cpu[k] = cpu[k].add(meter().sub(t0))
		}
	}
	pooled = make([]stats, len(ops))
	for k := range ops {
		pooled[k] = merge(runs[k]...)
	}
	return pooled, cpu, runs
}

// sliceRatios are a's throughput over b's in each slice both measured.
func sliceRatios(a, b []stats) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if tb := b[i].Throughput(); tb > 0 {
			out = append(out, a[i].Throughput()/tb)
		}
	}
	return out
}

// cpuUse is CPU time (user and system) of the processes of a measurement:
// the all-in-one jobgate, whose embedded Temporal server does nearly all
// of its work (Server), the api-role jobgate (API), and the bench itself,
// with its HTTP and SDK clients (Bench).
type cpuUse struct{ Server, API, Bench time.Duration }

func (c cpuUse) add(d cpuUse) cpuUse {
	return cpuUse{c.Server + d.Server, c.API + d.API, c.Bench + d.Bench}
}

func (c cpuUse) sub(d cpuUse) cpuUse {
	return cpuUse{c.Server - d.Server, c.API - d.API, c.Bench - d.Bench}
}

// perOp is c divided over n operations.
func (c cpuUse) perOp(n int) cpuUse {
	return cpuUse{perOp(c.Server, n), perOp(c.API, n), perOp(c.Bench, n)}
}

// Total is the CPU time of all three.
func (c cpuUse) Total() time.Duration { return c.Server + c.API + c.Bench }

// selfCPU is the bench process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perOp is cpu divided over s's operations.
func perOp(cpu time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return cpu / time.Duration(n)
}
