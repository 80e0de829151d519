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
	// Workflow is true for a workflow kind (several steps, inputs).
	Workflow bool `json:"workflow"`
	// Inputs are the named inputs a job of the kind may wait for.
	Inputs []inputBody `json:"inputs"`
}

// inputBody describes one input a kind may wait for.
type inputBody struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema"`
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
		inputs := []inputBody{}
		for _, in := range k.Inputs {
			schema := in.Schema
			if len(schema) == 0 {
				schema = json.RawMessage(`{"type":"object"}`)
			}
			inputs = append(inputs, inputBody{Name: in.Name, Description: in.Description, Schema: schema})
		}
		body.Kinds = append(body.Kinds, kindBody{Name: k.Name, Description: k.Description, InputSchema: schema, ExpectedDuration: k.ExpectedDuration,
			Workflow: k.IsWorkflow(), Inputs: inputs})
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, r, http.StatusOK, body)
}
