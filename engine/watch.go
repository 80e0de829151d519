package engine

import (
	"context"
	"math"
	"sync"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"golang.org/x/time/rate"

	"github.com/jobgate/jobgate/job"
)

// watchHub shares one look-up loop per watched job among all who wait on
// it, so a thousand long-polls of one job cost one Temporal call per
// interval, not a thousand. Those who wait only for the job's end (a
// waiting submission) need no look-ups at all: the job's close reaches
// them through the loop's one long-poll on the workflow's close, which
// follows the workflow's history: a batch of events before the close that
// holds a status event (statusEvent: the memo or JobState written, a
// cancellation requested) cuts the interval short, so those changes reach
// those who watch every change at once, and the interval is for what the
// history does not record while the work runs (an activity kind's start
// and retries, heartbeat progress). A job's interval backs off while its
// look-ups find no change, and a process-wide bound (limit) spaces the
// look-ups of all watched jobs, so the rate of look-ups stays bounded
// however many jobs are watched, by however many watchers.
type watchHub struct {
	load func(ctx context.Context, tenant, id string) (*job.Job, error)
	// interval is a job's look-up interval after a change; it doubles
	// with each look-up that finds none, up to maxInterval.
	interval, maxInterval time.Duration
	timeout               time.Duration
	// turns, when set, spaces the look-ups of all watched jobs; the
	// look-up after a job's close does not wait for its turn.
	turns *rate.Limiter
	// after is the clock's timer (time.After; tests replace it).
	after func(time.Duration) <-chan time.Time
	// closed, when set, blocks until the job's workflow closes (or ctx
	// ends) and returns its close event; the loop then publishes the
	// job's end at once instead of at its next interval, so a job's end
	// reaches its watchers without polling. It calls changed when events
	// that change the job's status reach the history before the close:
	// the loop then looks the job up at once (in its turn) for those who
	// watch every change.
	closed func(ctx context.Context, id string, changed func()) (*historypb.HistoryEvent, error)
	// tookSignal, when set, is called each time a loop takes a change
	// signal (tests).
	tookSignal func()
	// final, when set, builds the finished status from the job's latest
	// status and its close event, with no call to Temporal; when it
	// cannot (ok false), the loop looks the job up.
	final func(last *job.Job, ev *historypb.HistoryEvent) (j *job.Job, ok bool)

	mu      sync.Mutex
	watches map[string]*watch
}

// watch is one job's shared loop and its latest look-up.
type watch struct {
	// refs counts the watchers of every change, awaiting those of the
	// end only (hub's mu).
	refs, awaiting int

	mu     sync.Mutex
	cur    *job.Job
	err    error
	prev   string        // the version cur replaced, "" if none
	loaded time.Time     // when the look-up behind cur began
	next   chan struct{} // closed after each look-up
	ended  bool          // the loop has stopped: no look-up follows
}

// newWatchHub returns a hub that looks watched jobs up with load every
// interval, without back-off or bound until backOff and limit say
// otherwise.
func newWatchHub(load func(ctx context.Context, tenant, id string) (*job.Job, error), interval, timeout time.Duration) *watchHub {
	return &watchHub{load: load, interval: interval, maxInterval: interval, timeout: timeout, after: time.After, watches: map[string]*watch{}}
}

// backOff lets a job's interval double while its look-ups find no change,
// up to limit (at least the interval).
func (h *watchHub) backOff(limit time.Duration) { h.maxInterval = max(limit, h.interval) }

// limit bounds the look-ups of all watched jobs to perSecond on average,
// in bursts of a tenth of a second's worth; 0 is no bound.
func (h *watchHub) limit(perSecond float64) {
	if perSecond <= 0 {
		h.turns = nil
		return
	}
	h.turns = rate.NewLimiter(rate.Limit(perSecond), watchBurst(perSecond))
}

// watchBurst is how many look-ups the bound lets through at once.
func watchBurst(perSecond float64) int { return max(1, int(math.Ceil(perSecond/10))) }

// acquire returns the job's watch, starting its loop if nobody watches it
// yet; release must follow. endOnly says the caller waits for the job's
// end only. seed, when not nil, is the job's status as the caller knows
// it: a loop started for it begins with seed instead of a look-up.
func (h *watchHub) acquire(tenant, id string, endOnly bool, seed *job.Job) *watch {
	key := tenant + "\x00" + id
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.watches[key]
	if ok && w.hasEnded() {
		ok = false // its loop is on its way out; start a new one
	}
	if !ok {
		// A seed is no look-up: its zero time is older than any watcher.
		w = &watch{next: make(chan struct{}), cur: seed}
		h.watches[key] = w
		go h.run(key, tenant, id, w, seed != nil)
	}
	if endOnly {
		w.awaiting++
	} else {
		w.refs++
	}
	return w
}

func (h *watchHub) release(w *watch, endOnly bool) {
	h.mu.Lock()
	if endOnly {
		w.awaiting--
	} else {
		w.refs--
	}
	h.mu.Unlock()
}

// closeResult is what the close waiter learnt.
type closeResult struct {
	ev  *historypb.HistoryEvent
	err error
}

// run looks the job up while anyone watches its changes (and at once
// unless seeded), publishing each change; on the workflow's close it
// publishes the job's end. It stops when the last watcher leaves, the job
// finishes or a look-up fails. Between look-ups it waits the job's
// interval (doubling while nothing changes, reset by a change) and then
// its turn under the process-wide bound; the job's close cuts either wait
// short, so a job's end reaches its watchers at once however far the
// interval backed off.
func (h *watchHub) run(key, tenant, id string, w *watch, seeded bool) {
	// One long-poll on the workflow's close per watched job, however many
	// watch it. Without it, those who wait for the end are polled for too.
	polling := h.closed == nil
	closed := make(chan closeResult, 1)
	// changed holds one signal that a status event reached the history;
	// signals that arrive while one waits are the same signal.
	changed := make(chan struct{}, 1)
	if h.closed != nil {
		cctx, stop := context.WithCancel(context.Background())
		defer stop()
		go func() {
			ev, err := h.closed(cctx, id, func() {
				select {
				case changed <- struct{}{}:
				default:
				}
			})
			closed <- closeResult{ev, err}
		}()
	}
	var (
		lookUp  = !seeded
		byClose bool // the next look-up is the close's: it takes no turn
		// bySignal: the next look-up is a history change's; one that
		// finds no change leaves the interval and its timer as they were.
		bySignal bool
		delay    = h.interval
		tick     <-chan time.Time // the interval's timer; nil: start one
		last     string           // the version the last look-up found
	)
	if seeded {
		last = w.latest().Version()
	}
	// onClose handles the close waiter's answer; it reports whether the
	// loop is done.
	onClose := func(c closeResult) bool {
		closed = nil
		if c.err == nil && h.final != nil {
			if j, ok := h.final(w.latest(), c.ev); ok {
				w.publish(j, nil, time.Now())
				h.drop(key, w)
				return true
			}
		}
		// Look the closed job up; or, with the close waiter gone, learn
		// why, and poll for everyone from now on.
		lookUp, byClose, polling = true, true, polling || c.err != nil
		return false
	}
	for first := true; ; first = false {
		if !first {
			if tick == nil {
				tick = h.after(delay)
			}
			select {
			case <-tick:
				tick, bySignal = nil, false
				h.mu.Lock()
				lookUp = polling || w.refs > 0
				h.mu.Unlock()
			case <-changed:
				// Only those who watch every change need the look-up;
				// those who await the end get it from the close.
				bySignal = true
				h.mu.Lock()
				lookUp = w.refs > 0
				h.mu.Unlock()
				if h.tookSignal != nil {
					h.tookSignal()
				}
			case c := <-closed:
				if onClose(c) {
					return
				}
			}
			if h.idle(key, w) {
				return
			}
		}
		if lookUp && !byClose && h.turns != nil {
			r := h.turns.Reserve()
			if d := r.Delay(); d > 0 {
				select {
				case <-h.after(d):
				case c := <-closed:
					r.Cancel()
					if onClose(c) {
						return
					}
				}
				// Watchers may have left during a long wait for the turn.
				if h.idle(key, w) {
					return
				}
			}
		}
		if !lookUp {
			continue
		}
		byClose = false
		// A change signalled while this look-up waited for its turn is
		// this look-up's to see; one signalled from now on may not be.
		select {
		case <-changed:
		default:
		}
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		j, err := h.load(ctx, tenant, id)
		cancel()
		if w.publish(j, err, began) {
			h.drop(key, w)
			return
		}
		switch found := j.Version(); {
		case found != last:
			// The interval starts again from the change.
			delay, last, tick = h.interval, found, nil
		case !bySignal:
			delay = min(2*delay, h.maxInterval)
		}
	}
}

// idle removes w's loop from the hub when nobody watches it any more, and
// reports whether it did.
func (h *watchHub) idle(key string, w *watch) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w.refs+w.awaiting > 0 {
		return false
	}
	w.mu.Lock()
	w.ended = true
	w.mu.Unlock()
	if h.watches[key] == w {
		delete(h.watches, key)
	}
	return true
}

// drop removes w's loop, which has ended, from the hub. Current watchers
// hold its final answer; later ones start a fresh loop, which may already
// be in the map.
func (h *watchHub) drop(key string, w *watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watches[key] == w {
		delete(h.watches, key)
	}
}

// publish records a look-up that began at began and wakes the watchers to
// look at it. It reports whether the loop can stop: the job finished or is
// gone. A look-up that shows less than the one published before
// (job.Regresses: an earlier update, a lost start or progress) is not
// published: the watchers keep the newer status, as of this look-up.
func (w *watch) publish(j *job.Job, err error, began time.Time) (done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && w.err == nil && j.Regresses(w.cur) {
		j = w.cur
	}
	if j != nil && w.cur != nil && j.Version() != w.cur.Version() {
		w.prev = w.cur.Version()
	}
	w.cur, w.err, w.loaded = j, err, began
	w.ended = err != nil || j.State.Terminal()
	close(w.next)
	w.next = make(chan struct{})
	return w.ended
}

// latest is the job's latest status the loop knows.
func (w *watch) latest() *job.Job {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

func (w *watch) hasEnded() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

func (w *watch) snapshot() (cur *job.Job, err error, loaded time.Time, prev string, next <-chan struct{}, ended bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.err, w.loaded, w.prev, w.next, w.ended
}

// Watch implements job.Service. It answers only with look-ups that began
// after it was called, so a caller never gets a status older than the one
// it compared against, or with the look-up after the one the caller has
// (a change published while it was away, say writing the last one to its
// client); a finished job's status is final and answers at once.
func (s *Service) Watch(ctx context.Context, tenant, id, version string) (*job.Job, error) {
	start := time.Now()
	w := s.watches.acquire(tenant, id, false, nil)
	defer func() { s.watches.release(w, false) }()
	for {
		cur, err, loaded, prev, next, ended := w.snapshot()
		fresh := !loaded.Before(start)
		switch {
		case err != nil && fresh:
			return nil, err
		case err == nil && cur != nil && cur.State.Terminal():
			return cur, nil
		case err == nil && cur != nil && fresh && cur.Version() != version:
			return cur, nil
		case err == nil && cur != nil && version != "" && version == prev:
			// The caller has the look-up before cur: cur is newer.
			return cur, nil
		case ended:
			// The loop stopped on a look-up older than this waiter (one
			// that failed): start a new loop, whose look-up is fresh.
			s.watches.release(w, false)
			w = s.watches.acquire(tenant, id, false, nil)
			continue
		}
		select {
		case <-next:
		case <-ctx.Done():
			// A look-up from before the call answers only when it says
			// what the caller has: with the interval backed off it may be
			// older than the caller's copy.
			if cur != nil && (fresh || cur.Version() == version) {
				return cur, nil
			}
			return s.watches.load(context.WithoutCancel(ctx), tenant, id)
		}
	}
}

// Await implements job.Service. It is the waiting submission's wait: it
// joins the job's watch for its end only, so while the job runs it costs
// no look-ups, only the watch's one long-poll on the workflow's close;
// seeded with last, a watch it starts makes no first look-up either, and
// a job of an activity kind that succeeded is answered from its close
// event (closedJob). When ctx ends first it answers the job's current
// status, read once.
func (s *Service) Await(ctx context.Context, tenant string, last *job.Job) (*job.Job, error) {
	if last.State.Terminal() {
		return last, nil
	}
	start := time.Now()
	w := s.watches.acquire(tenant, last.ID, true, last)
	defer func() { s.watches.release(w, true) }()
	for {
		cur, err, loaded, _, next, ended := w.snapshot()
		switch {
		case err != nil && !loaded.Before(start):
			return nil, err
		case err == nil && cur != nil && cur.State.Terminal():
			return cur, nil
		case ended:
			// The loop stopped before this wait began (on a failed
			// look-up): a new one looks the job up first.
			s.watches.release(w, true)
			w = s.watches.acquire(tenant, last.ID, true, nil)
			continue
		}
		select {
		case <-next:
		case <-ctx.Done():
			return s.Get(context.WithoutCancel(ctx), tenant, last.ID)
		}
	}
}
