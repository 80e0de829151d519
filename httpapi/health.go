package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// Health serves /healthz and /readyz alone, for processes that run no API
// (role worker), so that orchestrators can probe them too. ready reports
// why the process cannot do its work, or nil.
// When metrics is not nil it is served at /metrics too.
func Health(ready func(context.Context) error, metrics http.Handler, logger *slog.Logger) http.Handler {
	s := &Server{log: logger, router: mux.NewRouter(), ready: ready}
	if metrics != nil {
		s.router.Handle("/metrics", metrics).Methods(http.MethodGet)
	}
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
// Temporal is reachable and a worker polls for jobs), 503 with the reason
// otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "error", err)
		p := problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "jobgate cannot run jobs right now: "+readinessReason(err))
		p.retryAfter = 5
		s.Error(w, r, p)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// readinessReason says why the process is not ready in words fit for a
// client: never the engine's own error text.
func readinessReason(err error) string {
	switch {
	case errors.Is(err, job.ErrOverloaded):
		return "more work is queued than the deployment accepts"
	case errors.Is(err, job.ErrNoWorker):
		var nw *job.NoWorkerError
		if errors.As(err, &nw) {
			queues := make([]string, len(nw.TaskQueues))
			for i, q := range nw.TaskQueues {
				queues[i] = strconv.Quote(q)
			}
			return "no worker is polling task queue " + strings.Join(queues, ", ")
		}
		return "no worker is polling for jobs"
	}
	return "Temporal is unreachable or too slow"
}
