package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// handleEvents streams a job's status as Server-Sent Events: one "status"
// event per change of state or progress, ending with the terminal status;
// no event shows less than the one before it (job.Regresses).
// Each event's id is the job's version, so a reconnecting client's
// Last-Event-ID skips what it already has. Comments keep proxies from
// closing a quiet stream. A stream holds one of the tenant's stream slots
// until it ends (429 when none is free).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	release, err := s.holdStream(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer release()
	j, err := s.jobs.Get(r.Context(), tenant, id)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	// The stream outlives the server's write timeout; each write sets its
	// own deadline instead.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	write := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.EventsKeepAlive + 10*time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	send := func(j *job.Job) bool {
		data, _ := json.Marshal(s.status(r, j))
		return write("id: %s\nevent: status\ndata: %s\n\n", j.Version(), data)
	}
	if !write("retry: 2000\n\n") {
		return
	}
	if j.Version() != r.Header.Get("Last-Event-ID") && !send(j) {
		return
	}
	for !j.State.Terminal() {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.EventsKeepAlive)
		next, err := s.jobs.Watch(ctx, tenant, id, j.Version())
		cancel()
		switch {
		case r.Context().Err() != nil:
			return
		case err != nil:
			p := s.problemFor(r, err)
			data, _ := json.Marshal(p)
			write("event: error\ndata: %s\n\n", data)
			return
		case next.Version() == j.Version() || next.Regresses(j):
			// Nothing new; or a look-up older than what the stream
			// showed, which a stream never sends (job.Regresses).
			if !write(": keep-alive\n\n") {
				return
			}
		default:
			j = next
			if !send(j) {
				return
			}
		}
	}
}
