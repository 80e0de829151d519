package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// Health serves /healthz and /readyz alone, for processes that run no API
// (role worker), so that orchestrators can probe them too. ready reports
// why the process cannot do its work, or nil.
func Health(ready func(context.Context) error, logger *slog.Logger) http.Handler {
	s := &Server{log: logger, router: mux.NewRouter(), ready: newReadiness(ready, logger, time.Now).check}
	s.router.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	s.router.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
	s.router.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	return s
}

// handleHealthz answers 200 while the process serves HTTP.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 when the process can do its work (for the API:
// Temporal is reachable and a worker polls for jobs), 503 otherwise. The
// answer names no reason (task queues, backlog, Temporal's state are the
// operator's business, in the log), and it costs no Temporal call of its
// own: the probe is shared (readiness).
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		p := problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "jobgate cannot run jobs right now; the reason is in its log.")
		p.retryAfter = 5
		s.Error(w, r, p)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// readinessTTL is how long one probe's answer serves every /readyz: an
// orchestrator probes every few seconds, a flood of probes costs Temporal
// one probe a second.
const readinessTTL = time.Second

// readinessTimeout bounds one probe, which no caller's context cancels (it
// serves every caller).
const readinessTimeout = 10 * time.Second

// readiness runs a readiness probe at most once per readinessTTL, however
// many callers ask: concurrent callers wait for the probe in flight, later
// ones take its answer until it is older than the TTL. A change of answer
// is logged once (warn on becoming not ready, with the reason; info on
// becoming ready), not once per request.
type readiness struct {
	probe func(context.Context) error
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	at       time.Time     // when the last answer was taken
	err      error         // the last answer
	inflight chan struct{} // closed when the probe in flight ends; nil when none
	probed   bool          // whether there was an answer yet
}

func newReadiness(probe func(context.Context) error, logger *slog.Logger, now func() time.Time) *readiness {
	return &readiness{probe: probe, log: logger, now: now}
}

// check answers the last probe's result if it is fresh, else waits for a
// new probe (or for ctx to end, which then answers ctx's error).
func (r *readiness) check(ctx context.Context) error {
	r.mu.Lock()
	if r.probed && r.now().Sub(r.at) < readinessTTL {
		err := r.err
		r.mu.Unlock()
		return err
	}
	done := r.inflight
	if done == nil {
		done = make(chan struct{})
		r.inflight = done
		go r.run(done)
	}
	r.mu.Unlock()
	select {
	case <-done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *readiness) run(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
	err := r.probe(ctx)
	cancel()
	r.mu.Lock()
	was, wasProbed := r.err, r.probed
	r.err, r.at, r.probed, r.inflight = err, r.now(), true, nil
	r.mu.Unlock()
	// Logged before the callers are answered, so the log has the reason
	// of every not-ready answer.
	if r.log == nil {
		return
	}
	switch {
	case err != nil && (was == nil || was.Error() != err.Error()):
		r.log.Warn("not ready", "error", err)
	case err == nil && wasProbed && was != nil:
		r.log.Info("ready again")
	}
}
