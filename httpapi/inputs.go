package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gorilla/mux"
)

// handleInput delivers an input to a running job that waits for it:
// 200 with the job's status once the job has taken it. An Idempotency-Key
// makes the delivery safe to retry: one key is taken once.
func (s *Server) handleInput(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r, false)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var body json.RawMessage
	if err := s.decodeJSON(w, r, &body); err != nil {
		s.Error(w, r, err)
		return
	}
	vars := mux.Vars(r)
	j, err := s.jobs.SendInput(r.Context(), s.tenant(r), vars["id"], vars["name"], key, body)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.writeStatus(w, r, http.StatusOK, j)
}
