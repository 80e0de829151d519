package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// submitBody is the body of POST /v1/jobs.
type submitBody struct {
	Kind        string          `json:"kind"`
	Input       json.RawMessage `json:"input"`
	CallbackURL string          `json:"callbackUrl"`
}

// handleSubmit accepts a job: 202 with Location and the job's status, or
// the same job again (Idempotent-Replayed) for a repeated Idempotency-Key.
func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r, s.cfg.RequireIdempotencyKey)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var body submitBody
	if err := s.decodeJSON(w, r, &body); err != nil {
		s.Error(w, r, err)
		return
	}
	if err := validateSubmit(body); err != nil {
		s.Error(w, r, err)
		return
	}
	j, created, err := s.jobs.Submit(r.Context(), job.SubmitRequest{
		Tenant:         s.tenant(r),
		IdempotencyKey: key,
		Kind:           body.Kind,
		Input:          body.Input,
		CallbackURL:    body.CallbackURL,
	})
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !created {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", s.url(statusPath(j.ID)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", s.retryAfter(j))
	writeJSON(w, r, http.StatusAccepted, s.status(j))
}

// validateSubmit checks the envelope of a submission; the kind checks its
// input.
func validateSubmit(b submitBody) error {
	var errs []job.FieldError
	if b.Kind == "" {
		errs = append(errs, job.FieldError{Field: "/kind", Message: "is required: name a job kind (GET /v1/kinds lists them)"})
	}
	if len(b.Input) > 0 && b.Input[0] != '{' && string(b.Input) != "null" {
		errs = append(errs, job.FieldError{Field: "/input", Message: "must be a JSON object"})
	}
	if b.CallbackURL != "" {
		if u, err := url.Parse(b.CallbackURL); err != nil || !u.IsAbs() || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, job.FieldError{Field: "/callbackUrl", Message: "must be an absolute http:// or https:// URL"})
		} else {
			errs = append(errs, job.FieldError{Field: "/callbackUrl", Message: "webhooks are not supported by this version of jobgate yet; poll statusUrl instead"})
		}
	}
	if len(errs) > 0 {
		return &job.ValidationError{Kind: b.Kind, Fields: errs}
	}
	return nil
}

// handleGet answers a job's status: 303 to the result once it succeeded
// (200 with ?redirect=false), 200 otherwise.
func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	redirect := true
	switch v := r.URL.Query().Get("redirect"); v {
	case "", "true":
	case "false":
		redirect = false
	default:
		s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "redirect must be true or false, not "+strconv.Quote(v)+"."))
		return
	}
	j, err := s.jobs.Get(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	code := http.StatusOK
	if j.State == job.StateSucceeded && redirect {
		code = http.StatusSeeOther
	}
	s.writeStatus(w, r, code, j)
}

// handleResult answers a succeeded job's result; 409 before that.
func (s *Server) handleResult(w http.ResponseWriter, r *http.Request) {
	result, j, err := s.jobs.Result(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private")
	w.Header().Set("Expires", j.ExpiresAt.UTC().Format(http.TimeFormat))
	writeJSON(w, r, http.StatusOK, result)
}

// handleCancel requests cancellation: 202 while it takes effect, 204 if the
// job is already canceled, 409 if it finished otherwise.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Cancel(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if j.State == job.StateCanceled {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Location", s.url(statusPath(j.ID)))
	s.writeStatus(w, r, http.StatusAccepted, j)
}
