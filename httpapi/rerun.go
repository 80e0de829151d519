package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// rerunBody is the optional body of POST /v1/jobs/{id}/rerun.
type rerunBody struct {
	// Input, when set, replaces the finished job's input.
	Input json.RawMessage `json:"input"`
}

// handleRerun submits a new job with the kind, input, callback and
// priority of a finished one (the body's input replacing the input): 202
// as for a submission, Idempotency-Key included; 409 for a job that has not
// finished.
func (s *Server) handleRerun(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	key, err := idempotencyKey(r, s.cfg.RequireIdempotencyKey)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var body rerunBody
	if r.ContentLength != 0 {
		if err := s.decodeJSON(w, r, &body); err != nil {
			s.Error(w, r, err)
			return
		}
		if len(body.Input) > 0 && body.Input[0] != '{' {
			s.Error(w, r, &job.ValidationError{Fields: []job.FieldError{{Field: "/input", Message: "must be a JSON object"}}})
			return
		}
	}
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	limits := s.limiter.limits(tenant)
	j, created, err := s.jobs.Rerun(r.Context(), id, job.SubmitRequest{
		Tenant:         tenant,
		IdempotencyKey: key,
		Input:          body.Input,
		RequestID:      requestID(r.Context()),
		MaxActive:      limits.MaxActive,
		FairnessWeight: limits.Weight,
	})
	var unfinished *job.NotFinishedError
	if errors.As(err, &unfinished) {
		p := problem(http.StatusConflict, "job-not-finished", "The job has not finished",
			fmt.Sprintf("The job is %s; only a succeeded, failed or canceled job can be rerun.", unfinished.Job.State))
		p.JobID, p.State, p.StatusURL = id, unfinished.Job.State, s.url(r, statusPath(id))
		err = p
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.acceptedHeaders(w, r, j, created, start)
	s.writeStatus(w, r, http.StatusAccepted, j)
}
