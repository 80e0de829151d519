package engine

import (
	"context"
	"sync"
	"time"

	"github.com/jobgate/jobgate/job"
)

// watchHub shares one look-up loop per watched job among all who wait on
// it, so a thousand long-polls of one job cost one Temporal call per
// interval, not a thousand.
type watchHub struct {
	load     func(ctx context.Context, tenant, id string) (*job.Job, error)
	interval time.Duration
	timeout  time.Duration
	// closed, when set, blocks until the job's workflow closes (or ctx
	// ends); the loop then looks the job up at once instead of at its next
	// interval, so a job's end reaches its watchers without polling.
	closed func(ctx context.Context, id string) error

	mu      sync.Mutex
	watches map[string]*watch
}

// watch is one job's shared loop and its latest look-up.
type watch struct {
	refs int

	mu     sync.Mutex
	cur    *job.Job
	err    error
	loaded time.Time     // when the look-up behind cur began
	next   chan struct{} // closed after each look-up
	ended  bool          // the loop has stopped: no look-up follows
}

func newWatchHub(load func(ctx context.Context, tenant, id string) (*job.Job, error), interval, timeout time.Duration) *watchHub {
	return &watchHub{load: load, interval: interval, timeout: timeout, watches: map[string]*watch{}}
}

// acquire returns the job's watch, starting its loop if nobody watches it
// yet; release must follow.
func (h *watchHub) acquire(tenant, id string) *watch {
	key := tenant + "\x00" + id
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.watches[key]
	if ok && w.hasEnded() {
		ok = false // its loop is on its way out; start a new one
	}
	if !ok {
		w = &watch{next: make(chan struct{})}
		h.watches[key] = w
		go h.run(key, tenant, id, w)
	}
	w.refs++
	return w
}

func (h *watchHub) release(w *watch) {
	h.mu.Lock()
	w.refs--
	h.mu.Unlock()
}

// run looks the job up every interval while anyone watches it, publishing
// each change, and stops when the last watcher leaves, the job finishes or
// the look-up fails.
func (h *watchHub) run(key, tenant, id string, w *watch) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	// One long-poll on the workflow's close per watched job, however many
	// watch it.
	closed := make(chan struct{})
	if h.closed != nil {
		cctx, stop := context.WithCancel(context.Background())
		defer stop()
		go func() {
			if h.closed(cctx, id) == nil {
				close(closed)
			}
		}()
	}
	for {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		j, err := h.load(ctx, tenant, id)
		cancel()
		done := w.publish(j, err, began)

		h.mu.Lock()
		if done || w.refs == 0 {
			// Later watchers start a fresh loop; current ones hold the
			// final answer. A fresh loop may already be in the map.
			if h.watches[key] == w {
				delete(h.watches, key)
			}
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		select {
		case <-t.C:
		case <-closed:
			closed = nil // look up once more; the next look-up ends the loop
		}
	}
}

// publish records a look-up that began at began and wakes the watchers to
// look at it. It reports whether the loop can stop: the job finished or is
// gone.
func (w *watch) publish(j *job.Job, err error, began time.Time) (done bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cur, w.err, w.loaded = j, err, began
	w.ended = err != nil || j.State.Terminal()
	close(w.next)
	w.next = make(chan struct{})
	return w.ended
}

func (w *watch) hasEnded() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

func (w *watch) snapshot() (cur *job.Job, err error, loaded time.Time, next <-chan struct{}, ended bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur, w.err, w.loaded, w.next, w.ended
}

// Watch implements job.Service. It answers only with look-ups that began
// after it was called, so a caller never gets a status older than the one
// it compared against; a finished job's status is final and answers at
// once.
func (s *Service) Watch(ctx context.Context, tenant, id, version string) (*job.Job, error) {
	start := time.Now()
	w := s.watches.acquire(tenant, id)
	defer func() { s.watches.release(w) }()
	for {
		cur, err, loaded, next, ended := w.snapshot()
		fresh := !loaded.Before(start)
		switch {
		case err != nil && fresh:
			return nil, err
		case err == nil && cur != nil && cur.State.Terminal():
			return cur, nil
		case err == nil && cur != nil && fresh && cur.Version() != version:
			return cur, nil
		case ended:
			// The loop stopped on a look-up older than this waiter (one
			// that failed): start a new loop, whose look-up is fresh.
			s.watches.release(w)
			w = s.watches.acquire(tenant, id)
			continue
		}
		select {
		case <-next:
		case <-ctx.Done():
			if cur != nil {
				return cur, nil
			}
			return s.Get(context.WithoutCancel(ctx), tenant, id)
		}
	}
}
