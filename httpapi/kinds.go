package httpapi

import (
	"encoding/json"
	"net/http"
)

// kindBody describes one job kind to clients.
type kindBody struct {
	Name             string          `json:"name"`
	Description      string          `json:"description"`
	InputSchema      json.RawMessage `json:"inputSchema"`
	ExpectedDuration string          `json:"expectedDuration"`
}

// handleKinds lists the job kinds this deployment runs, with their input
// schemas.
func (s *Server) handleKinds(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Kinds []kindBody `json:"kinds"`
	}{Kinds: []kindBody{}}
	for _, k := range s.kinds.Kinds() {
		schema := k.InputSchema
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		body.Kinds = append(body.Kinds, kindBody{Name: k.Name, Description: k.Description, InputSchema: schema, ExpectedDuration: k.ExpectedDuration})
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, r, http.StatusOK, body)
}
