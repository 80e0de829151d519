package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"

	"github.com/jobgate/jobgate/job"
)

// fakeJobs is a job whose status the test sets, counting look-ups: the
// watch hub's unit under test is its sharing and waking, not Temporal.
type fakeJobs struct {
	mu    sync.Mutex
	j     job.Job
	err   error
	loads atomic.Int64
	delay time.Duration
}

func (f *fakeJobs) load(ctx context.Context, tenant, id string) (*job.Job, error) {
	f.loads.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	j := f.j
	return &j, nil
}

func (f *fakeJobs) set(update func(*job.Job), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if update != nil {
		update(&f.j)
	}
	f.err = err
}

func newTestService(f *fakeJobs, interval time.Duration) *Service {
	s := &Service{cfg: Config{CallTimeout: time.Second}}
	s.watches = newWatchHub(f.load, interval, time.Second)
	return s
}

func TestWatchSharesOneLoopAndWakesOnChange(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Progress: &job.Progress{Current: 1, Total: 10}}}
	s := newTestService(f, 20*time.Millisecond)
	version := f.j.Version()

	const waiters = 200
	var wg sync.WaitGroup
	type result struct {
		j   *job.Job
		err error
	}
	results := make(chan result, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := s.Watch(context.Background(), "t", "a", version)
			results <- result{j, err}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let them all wait through a few look-ups
	f.set(func(j *job.Job) { j.Progress = &job.Progress{Current: 2, Total: 10} }, nil)
	wg.Wait()
	close(results)
	for r := range results {
		require.NoError(t, r.err)
		require.EqualValues(t, 2, r.j.Progress.Current)
	}
	// 200 waiters over ~100ms at a 20ms interval: a handful of look-ups
	// (more when a loaded machine stretches the sleep), not one per
	// waiter, let alone one per waiter per interval.
	require.Less(t, f.loads.Load(), int64(waiters/2), "look-ups are shared")
}

func TestWatchNeverAnswersWithAnOlderLookUp(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Attempt: 1}, delay: 30 * time.Millisecond}
	s := newTestService(f, 10*time.Millisecond)
	old := f.j.Version()
	// A first watcher keeps the loop busy with look-ups of the old state.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, _ = s.Watch(ctx, "t", "a", "some-other-version")
	}()
	time.Sleep(15 * time.Millisecond)
	// The caller read attempt 2 itself; a look-up that began earlier and
	// still says attempt 1 must not be handed back to it as a change.
	f.set(func(j *job.Job) { j.Attempt = 2 }, nil)
	current := f.j
	// Long enough for a fresh look-up even on a loaded machine: when the
	// context ends first, Watch answers with the latest look-up it has.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	j, err := s.Watch(ctx, "t", "a", current.Version())
	require.NoError(t, err)
	require.NotEqual(t, old, j.Version())
	require.Equal(t, 2, j.Attempt)
}

func TestWatchReturnsAFailureAtOnce(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning}, delay: 50 * time.Millisecond}
	s := newTestService(f, 10*time.Millisecond)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = s.Watch(ctx, "t", "a", "x")
	}()
	time.Sleep(20 * time.Millisecond) // a look-up is in flight
	f.set(nil, job.ErrNotFound)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := s.Watch(ctx, "t", "a", f.j.Version())
	require.True(t, errors.Is(err, job.ErrNotFound), "got %v", err)
	require.Less(t, time.Since(start), 2*time.Second, "the failure is answered, not waited out")
}

func TestWatchAnswersAFinishedJobAtOnce(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateSucceeded}}
	s := newTestService(f, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	j, err := s.Watch(ctx, "t", "a", f.j.Version())
	require.NoError(t, err)
	require.Equal(t, job.StateSucceeded, j.State)
	require.NoError(t, ctx.Err())
}

// A job's close reaches its watchers at once, not at the next look-up
// interval: the hub's close waiter (one per watched job) cuts the wait
// short.
func TestWatchWakesOnCloseWithoutPolling(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning}}
	s := newTestService(f, time.Hour)
	closedNow := make(chan struct{})
	var waiters atomic.Int32
	s.watches.closed = func(ctx context.Context, id string, _ func()) (*historypb.HistoryEvent, error) {
		waiters.Add(1)
		select {
		case <-closedNow:
			return &historypb.HistoryEvent{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	const watchers = 50
	results := make(chan *job.Job, watchers)
	version := f.j.Version()
	for range watchers {
		go func() {
			j, _ := s.Watch(context.Background(), "t", "a", version)
			results <- j
		}()
	}
	// Every watcher is on the one loop, which has looked the job up.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.watches.mu.Lock()
		w := s.watches.watches["t\x00a"]
		refs := 0
		if w != nil {
			refs = w.refs
		}
		s.watches.mu.Unlock()
		if refs == watchers && f.loads.Load() > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.set(func(j *job.Job) { j.State = job.StateSucceeded }, nil)
	start := time.Now()
	close(closedNow)
	for range watchers {
		select {
		case j := <-results:
			require.Equal(t, job.StateSucceeded, j.State)
		case <-time.After(10 * time.Second):
			t.Fatal("a watcher was not woken by the close")
		}
	}
	require.Less(t, time.Since(start), 5*time.Second)
	require.EqualValues(t, 1, waiters.Load(), "one close waiter for all watchers")
	require.LessOrEqual(t, f.loads.Load(), int64(3), "look-ups are shared")
}

// signalsOn is a close waiter whose workflow never closes and whose
// history gains a status event each time grew is sent to.
func signalsOn(grew <-chan struct{}) func(ctx context.Context, id string, changed func()) (*historypb.HistoryEvent, error) {
	return func(ctx context.Context, _ string, changed func()) (*historypb.HistoryEvent, error) {
		for {
			select {
			case <-grew:
				changed()
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// A change recorded in the workflow's history before its close (a step's
// end, a memo write) reaches those who watch every change at once, not at
// the next look-up interval: the close waiter signals each batch holding
// a status event, and the loop looks the job up then. Those who await
// only the end cost no look-up for it.
func TestWatchLooksUpWhenTheHistoryGrows(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning}}
	s := newTestService(f, time.Hour)
	taken := make(chan struct{}, 4)
	s.watches.tookSignal = func() { taken <- struct{}{} }
	grew := make(chan struct{})
	s.watches.closed = signalsOn(grew)
	// Awaiting the end only: a change in the history costs no look-up.
	actx, stopAwait := context.WithCancel(context.Background())
	awaited := make(chan struct{})
	go func() {
		defer close(awaited)
		_, _ = s.Await(actx, "t", &job.Job{ID: "a", State: job.StateRunning})
	}()
	require.Eventually(t, func() bool {
		s.watches.mu.Lock()
		defer s.watches.mu.Unlock()
		w := s.watches.watches["t\x00a"]
		return w != nil && w.awaiting == 1
	}, 5*time.Second, 5*time.Millisecond)
	grew <- struct{}{}
	select {
	case <-taken:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not take the change signal")
	}

	// Watching every change (joining the seeded loop, which makes no
	// look-up for it): the change is looked up when the history grows,
	// within moments rather than the hour's interval.
	version := f.j.Version()
	got := make(chan *job.Job, 1)
	go func() {
		j, _ := s.Watch(context.Background(), "t", "a", version)
		got <- j
	}()
	require.Eventually(t, func() bool {
		s.watches.mu.Lock()
		defer s.watches.mu.Unlock()
		return s.watches.watches["t\x00a"].refs == 1
	}, 5*time.Second, 5*time.Millisecond)
	f.set(func(j *job.Job) { j.Progress = &job.Progress{Current: 1, Total: 2} }, nil)
	grew <- struct{}{}
	select {
	case j := <-got:
		require.NotNil(t, j)
		require.EqualValues(t, 1, j.Progress.Current)
	case <-time.After(5 * time.Second):
		t.Fatal("a change in the history did not reach the watcher before the next interval")
	}
	<-taken
	// One look-up, the second signal's: the first, with only a waiter of
	// the end, made none.
	require.EqualValues(t, 1, f.loads.Load())
	stopAwait()
	<-awaited
}

// A waiting submission's wait makes no look-up of its own: seeded with
// the job it just started, it costs only the watch's close waiter, however
// long the job runs and however short the look-up interval, and the end
// is built from the close event.
func TestAwaitMakesNoLookUps(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning}}
	s := newTestService(f, 5*time.Millisecond)
	closedNow := make(chan struct{})
	s.watches.closed = func(ctx context.Context, id string, _ func()) (*historypb.HistoryEvent, error) {
		select {
		case <-closedNow:
			return &historypb.HistoryEvent{EventId: 7}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.watches.final = func(last *job.Job, ev *historypb.HistoryEvent) (*job.Job, bool) {
		if ev.GetEventId() != 7 || last.ID != "a" {
			return nil, false
		}
		done := *last
		done.State = job.StateSucceeded
		return &done, true
	}
	const waiters = 20
	results := make(chan *job.Job, waiters)
	for range waiters {
		go func() {
			j, err := s.Await(context.Background(), "t", &job.Job{ID: "a", State: job.StateQueued})
			if err != nil {
				results <- nil
				return
			}
			results <- j
		}()
	}
	// Many look-up intervals pass while the job runs.
	time.Sleep(200 * time.Millisecond)
	close(closedNow)
	for range waiters {
		select {
		case j := <-results:
			require.NotNil(t, j)
			require.Equal(t, job.StateSucceeded, j.State)
		case <-time.After(10 * time.Second):
			t.Fatal("a waiter was not woken by the close")
		}
	}
	require.Zero(t, f.loads.Load(), "no look-ups while only the end is awaited")
}

// A watcher of changes that joins an awaited job's watch gets look-ups
// again, at the interval.
func TestAwaitAndWatchShareALoop(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Progress: &job.Progress{Current: 1, Total: 10}}}
	s := newTestService(f, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	awaited := make(chan *job.Job, 1)
	go func() {
		j, _ := s.Await(ctx, "t", &job.Job{ID: "a", State: job.StateQueued})
		awaited <- j
	}()
	version := f.j.Version()
	f.set(func(j *job.Job) { j.Progress = &job.Progress{Current: 2, Total: 10} }, nil)
	j, err := s.Watch(ctx, "t", "a", version)
	require.NoError(t, err)
	require.EqualValues(t, 2, j.Progress.Current)
	f.set(func(j *job.Job) { j.State = job.StateFailed }, nil)
	// With no close waiter, the awaiting waiter is polled for.
	select {
	case j := <-awaited:
		require.Equal(t, job.StateFailed, j.State)
	case <-time.After(10 * time.Second):
		t.Fatal("the awaited end did not arrive")
	}
}

// fakeTimers stands in for the hub's timer: each wait the loop asks for is
// handed to the test, which fires it.
type fakeTimers struct{ waits chan fakeTimer }

type fakeTimer struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeTimers() *fakeTimers { return &fakeTimers{waits: make(chan fakeTimer)} }

func (c *fakeTimers) after(d time.Duration) <-chan time.Time {
	t := fakeTimer{d: d, fire: make(chan time.Time, 1)}
	c.waits <- t
	return t.fire
}

// next is the loop's next wait.
func (c *fakeTimers) next(tb testing.TB) fakeTimer {
	tb.Helper()
	select {
	case t := <-c.waits:
		return t
	case <-time.After(5 * time.Second):
		tb.Fatal("the watch loop asked for no wait")
		return fakeTimer{}
	}
}

// newTimedTestService is a service watching a running job whose look-up
// interval is 10 ms backing off to 80 ms, on fake timers.
func newTimedTestService() (*fakeJobs, *Service, *fakeTimers) {
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Attempt: 1}}
	s := newTestService(f, 10*time.Millisecond)
	s.watches.backOff(80 * time.Millisecond)
	timers := newFakeTimers()
	s.watches.after = timers.after
	return f, s, timers
}

// While look-ups find no change a job's interval doubles up to its cap,
// and a change resets it.
func TestWatchIntervalBacksOffWhileNothingChanges(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	f, s, timers := newTimedTestService()
	w := s.watches.acquire("t", "a", false, nil)

	var waits []time.Duration
	// lookUps lets n look-ups happen, the first n-1 waits fired; it
	// returns the last wait, for the test to fire.
	var pending chan time.Time
	lookUps := func(n int) {
		t.Helper()
		for i := range n {
			if pending != nil {
				pending <- time.Now()
			}
			tm := timers.next(t)
			// The loop asks for a wait after each look-up.
			require.EqualValues(t, len(waits)+1, f.loads.Load(), "look-up %d", i)
			waits = append(waits, tm.d)
			pending = tm.fire
		}
	}
	lookUps(6)
	require.Equal(t, []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 80 * ms, 80 * ms}, waits)

	f.set(func(j *job.Job) { j.Attempt = 2 }, nil) // found by the 7th look-up
	lookUps(3)
	require.Equal(t, []time.Duration{10 * ms, 20 * ms, 40 * ms}, waits[6:], "a change resets the interval")

	lookUps(1) // the 10th look-up
	s.watches.release(w, false)
	pending <- time.Now()
	eventually(t, func() bool {
		s.watches.mu.Lock()
		defer s.watches.mu.Unlock()
		return len(s.watches.watches) == 0
	}, "the loop stops once nobody watches")
	require.EqualValues(t, 10, f.loads.Load(), "no look-up once nobody watches")
}

// eventually waits up to 5 seconds for cond.
func eventually(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingJobs is many running jobs that change at every look-up, so no
// interval backs off: only the process-wide bound holds the look-ups back.
type countingJobs struct {
	mu    sync.Mutex
	loads map[string]int
	total atomic.Int64
}

func (c *countingJobs) load(_ context.Context, _, id string) (*job.Job, error) {
	c.total.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loads[id]++
	return &job.Job{ID: id, State: job.StateRunning, Progress: &job.Progress{Current: int64(c.loads[id]), Total: 1 << 40}}, nil
}

// The look-ups of all watched jobs together stay within the bound, however
// many jobs are watched and however short their interval, and every job
// gets its turns.
func TestWatchLookUpsAreBoundedAcrossJobs(t *testing.T) {
	t.Parallel()
	const (
		jobs      = 50
		perSecond = 100
	)
	c := &countingJobs{loads: map[string]int{}}
	begin := time.Now()
	h := newWatchHub(c.load, time.Millisecond, time.Second)
	h.limit(perSecond)
	var held []*watch
	for i := range jobs {
		held = append(held, h.acquire("t", fmt.Sprintf("job-%d", i), false, nil))
	}
	time.Sleep(time.Second)
	total := c.total.Load()
	elapsed := time.Since(begin)
	for _, w := range held {
		h.release(w, false)
	}

	bound := float64(watchBurst(perSecond)) + perSecond*elapsed.Seconds()
	t.Logf("%d look-ups of %d jobs in %s (bound %.0f; unbounded, a 1ms interval would make about %d)", total, jobs, elapsed.Round(time.Millisecond), bound, int(jobs*elapsed.Seconds()*1000))
	require.LessOrEqual(t, float64(total), bound+1)
	require.Greater(t, total, int64(jobs/2), "look-ups go on under the bound")
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range jobs {
		require.Positive(t, c.loads[fmt.Sprintf("job-%d", i)], "job-%d had no turn", i)
	}
}

// A job's close cuts its wait for a turn under the bound short: its end
// reaches its watchers at once, however long the queue of look-ups.
func TestWatchCloseSkipsTheQueue(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning}}
	s := newTestService(f, time.Millisecond)
	s.watches.limit(0.05) // after the first look-up, the next turn is 20s away
	closedNow := make(chan struct{})
	s.watches.closed = func(ctx context.Context, id string, _ func()) (*historypb.HistoryEvent, error) {
		select {
		case <-closedNow:
			return &historypb.HistoryEvent{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	version := f.j.Version()
	result := make(chan *job.Job, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		j, _ := s.Watch(ctx, "t", "a", version)
		result <- j
	}()
	eventually(t, func() bool { return f.loads.Load() == 1 }, "no first look-up")
	f.set(func(j *job.Job) { j.State = job.StateSucceeded }, nil)
	close(closedNow)
	j := <-result
	require.Equal(t, job.StateSucceeded, j.State, "the close was not looked up before the watch's 15s ran out")
	require.EqualValues(t, 2, f.loads.Load())
}

// A watch that times out answers with the hub's latest look-up only when
// that is not older than the caller's copy: with the interval backed off,
// the latest look-up may predate what the caller read itself.
func TestWatchTimeoutNeverAnswersAnOlderCopy(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Attempt: 1}}
	s := newTestService(f, time.Hour)
	w := s.watches.acquire("t", "a", false, nil)
	defer s.watches.release(w, false)
	eventually(t, func() bool { _, _, loaded, _, _, _ := w.snapshot(); return !loaded.IsZero() }, "no first look-up")

	// The hub's look-up says what the caller has: it answers, no look-up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	j, err := s.Watch(ctx, "t", "a", f.j.Version())
	require.NoError(t, err)
	require.Equal(t, 1, j.Attempt)
	require.EqualValues(t, 1, f.loads.Load())

	// The caller read attempt 2 itself; the hub still has attempt 1.
	f.set(func(j *job.Job) { j.Attempt = 2 }, nil)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	j, err = s.Watch(ctx, "t", "a", f.j.Version())
	require.NoError(t, err)
	require.Equal(t, 2, j.Attempt, "answered with a look-up older than the caller's copy")
}

// A change published between a caller's watches (while it wrote the last
// one to its client, say) answers its next watch at once: the caller has
// the look-up before the latest, which is newer.
func TestWatchAnswersAChangeMadeBetweenCalls(t *testing.T) {
	t.Parallel()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Attempt: 1}}
	s := newTestService(f, time.Hour)
	timers := newFakeTimers()
	s.watches.after = timers.after
	w := s.watches.acquire("t", "a", false, nil)
	defer s.watches.release(w, false)
	tm := timers.next(t) // after the first look-up
	had := f.j.Version()
	f.set(func(j *job.Job) { j.Attempt = 2 }, nil)
	tm.fire <- time.Now()
	tm = timers.next(t) // after the second look-up, which found attempt 2
	defer func() { tm.fire <- time.Now() }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j, err := s.Watch(ctx, "t", "a", had)
	require.NoError(t, err)
	require.Equal(t, 2, j.Attempt)
	require.NoError(t, ctx.Err(), "the watch waited for a look-up it did not need")
	require.EqualValues(t, 2, f.loads.Load())
}

// A look-up that shows less than the one the watch published (the old
// bug: a closing job read as running with no start or progress) is not
// published: watchers keep the newer status, and the final one follows.
func TestWatchNeverPublishesAnOlderStatus(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	f := &fakeJobs{j: job.Job{ID: "a", State: job.StateRunning, Attempt: 1, CreatedAt: t0, StartedAt: t0, UpdatedAt: t0.Add(time.Second),
		Progress: &job.Progress{Current: 9, Total: 10}}}
	s := newTestService(f, 5*time.Millisecond)
	shown := f.j
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	j, err := s.Watch(ctx, "t", "a", "none")
	require.NoError(t, err)
	require.Equal(t, shown.Version(), j.Version())

	f.set(func(j *job.Job) { j.StartedAt, j.Progress, j.UpdatedAt = time.Time{}, nil, t0 }, nil)
	// Many look-ups of the older status: none is answered.
	wctx, wcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer wcancel()
	j, err = s.Watch(wctx, "t", "a", shown.Version())
	require.NoError(t, err)
	require.Equal(t, shown.Version(), j.Version(), "the watch answered an older status")
	require.NotNil(t, j.Progress)
	require.False(t, j.StartedAt.IsZero())

	f.set(func(j *job.Job) {
		j.State, j.Progress, j.StartedAt, j.UpdatedAt, j.CompletedAt = job.StateSucceeded, &job.Progress{Current: 10, Total: 10}, t0, t0.Add(2*time.Second), t0.Add(2*time.Second)
	}, nil)
	j, err = s.Watch(ctx, "t", "a", shown.Version())
	require.NoError(t, err)
	require.Equal(t, job.StateSucceeded, j.State)
	require.EqualValues(t, 10, j.Progress.Current)
}

// A look-up for a change signal that finds nothing new (the JobState
// upsert of an activity kind's first workflow task, whose running state
// comes from its pending activity) leaves the interval and its timer as
// they were: the timed look-up still comes at its time, and the interval
// doubles only for the timed look-ups that found nothing.
func TestWatchSignalThatChangesNothingKeepsTheInterval(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	f, s, timers := newTimedTestService()
	grew := make(chan struct{})
	s.watches.closed = signalsOn(grew)
	w := s.watches.acquire("t", "a", false, nil)
	defer s.watches.release(w, false)
	first := timers.next(t)
	require.Equal(t, 10*ms, first.d)
	require.EqualValues(t, 1, f.loads.Load())

	grew <- struct{}{}
	require.Eventually(t, func() bool { return f.loads.Load() == 2 }, 5*time.Second, time.Millisecond)
	first.fire <- time.Now() // the first wait, still the loop's timer
	next := timers.next(t)
	require.EqualValues(t, 3, f.loads.Load(), "the timed look-up came at its time")
	require.Equal(t, 20*ms, next.d, "doubled once, by the timed look-up")
}
