package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// ProblemBase is the prefix of every problem type URI; docs/api.md lists
// them all.
const ProblemBase = "https://jobgate.dev/problems/"

// Problem is an RFC 9457 problem details object, with jobgate's extension
// members.
type Problem struct {
	Type     string           `json:"type"`
	Title    string           `json:"title"`
	Status   int              `json:"status,omitempty"`
	Detail   string           `json:"detail,omitempty"`
	Instance string           `json:"instance,omitempty"`
	Errors   []job.FieldError `json:"errors,omitempty"`
	JobID    string           `json:"jobId,omitempty"`
	State    job.State        `json:"state,omitempty"`
	// StatusURL points at the job's status monitor.
	StatusURL string `json:"statusUrl,omitempty"`
	// Error is the failed or canceled job's own error.
	JobError *Problem `json:"error,omitempty"`
	// RequestID identifies the request in jobgate's logs.
	RequestID string `json:"requestId,omitempty"`

	retryAfter   int
	allow        []string
	authenticate bool
	quota        *quotaHeader
}

// quotaHeader is a limit a 429 reports in RateLimit-Policy and RateLimit.
type quotaHeader struct {
	name         string
	limit, reset int
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// problem builds a Problem of the named type.
func problem(status int, name, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + name, Title: title, Status: status, Detail: detail}
}

// badRequest is a 400 problem about the request's syntax.
func badRequest(name, title, detail string) *Problem {
	return problem(http.StatusBadRequest, name, title, detail)
}

// Error writes err as problem+json: job errors and *Problem as what they
// say, anything else as a 500 with a fixed text, logged with the request id.
// It is the only place errors become HTTP.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	p := s.problemFor(r, err)
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	if q := p.quota; q != nil {
		w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"%s";q=%d`, q.name, q.limit))
		w.Header().Set("RateLimit", fmt.Sprintf(`"%s";r=0;t=%d`, q.name, q.reset))
	}
	if p.authenticate {
		w.Header().Set("WWW-Authenticate", `Bearer realm="jobgate"`)
	}
	if len(p.allow) > 0 {
		w.Header().Set("Allow", strings.Join(p.allow, ", "))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, p.Status, "application/problem+json", p)
}

// problemFor is err as the problem answered to r.
func (s *Server) problemFor(r *http.Request, err error) *Problem {
	p := s.toProblem(r, err)
	p.RequestID = requestID(r.Context())
	// The occurrence: the request's path, and which request it was.
	p.Instance = r.URL.Path + "#request-" + p.RequestID
	return p
}

func (s *Server) toProblem(r *http.Request, err error) *Problem {
	var (
		p           *Problem
		unknownKind *job.UnknownKindError
		invalid     *job.ValidationError
		notFinished *job.NotFinishedError
		finished    *job.FinishedError
		badCursor   *job.InvalidCursorError
		quota       *job.QuotaError
		blobQuota   *job.BlobQuotaError
		noInput     *job.UnknownInputError
		notWaiting  *job.NotWaitingError
		rejected    *job.InputRejectedError
	)
	switch {
	case errors.As(err, &p):
		return p
	case errors.Is(err, job.ErrNotFound):
		if id := mux.Vars(r)["id"]; id != "" && !validJobID(id) {
			return problem(http.StatusNotFound, "not-found", "No such job",
				fmt.Sprintf("Job ids are UUIDs (such as 3f1c2a9e-5b7d-4c1e-9a2f-6d8b0e4c7a15, as the 202 of a submission gives them); %q is not one.", trimForDetail(id)))
		}
		return problem(http.StatusNotFound, "not-found", "No such job", "There is no job with this id for your tenant.")
	case errors.As(err, &quota):
		p := problem(http.StatusTooManyRequests, "too-many-active-jobs", "Too many active jobs",
			fmt.Sprintf("Your tenant has %d queued or running jobs, its maximum; submit again when some have finished.", quota.Active))
		p.retryAfter = 5
		p.quota = &quotaHeader{name: "active-jobs", limit: quota.Limit, reset: p.retryAfter}
		return p
	case errors.As(err, &blobQuota):
		p := problem(http.StatusTooManyRequests, "blob-quota-exceeded", "Blob storage quota used up",
			fmt.Sprintf("Your tenant's results, exports and checkpoints hold %d bytes of its %d-byte blob storage quota, so a new job's result could not be kept; space comes back as results expire or are deleted.", blobQuota.Used, blobQuota.Limit))
		p.retryAfter = 60
		p.quota = &quotaHeader{name: "blob-bytes", limit: int(blobQuota.Limit), reset: p.retryAfter}
		return p
	case errors.As(err, &badCursor):
		return badRequest("invalid-cursor", "Invalid cursor", "The cursor cannot be used: "+badCursor.Reason+".")
	case errors.Is(err, job.ErrExpired) && r.Method == http.MethodPost:
		return problem(http.StatusGone, "expired", "Idempotency-Key expired",
			"This Idempotency-Key belongs to a job whose result has expired; Temporal still remembers the key, so use a new key for a new job.")
	case errors.Is(err, job.ErrExpired):
		return problem(http.StatusGone, "expired", "Job expired", "The job finished longer ago than this deployment keeps results; submit it again if you still need it.")
	case errors.As(err, &unknownKind):
		p := problem(http.StatusUnprocessableEntity, "unknown-kind", "Unknown job kind", unknownKind.Error())
		p.Errors = []job.FieldError{{Field: "/kind", Message: fmt.Sprintf("must be one of: %s", strings.Join(unknownKind.Known, ", "))}}
		return p
	case errors.As(err, &noInput):
		return problem(http.StatusNotFound, "no-such-input", "No such input", noInput.Error()+".")
	case errors.As(err, &notWaiting):
		j := notWaiting.Job
		p := problem(http.StatusConflict, "not-waiting", "The job is not waiting for this input", notWaiting.Error()+".")
		if j.State != "" {
			p.JobID, p.State, p.StatusURL = j.ID, j.State, s.url(r, statusPath(j.ID))
		}
		return p
	case errors.As(err, &rejected):
		p := problem(http.StatusUnprocessableEntity, "input-rejected", "Input refused by the job", rejected.Error()+".")
		p.Errors = []job.FieldError{{Field: "/", Message: rejected.Reason}}
		return p
	case errors.As(err, &invalid) && invalid.Input != "":
		p := problem(http.StatusUnprocessableEntity, "invalid-input", "Invalid input", fmt.Sprintf("The body does not satisfy the schema of input %q; see errors.", invalid.Input))
		p.Errors = append([]job.FieldError(nil), invalid.Fields...)
		sort.Slice(p.Errors, func(i, j int) bool { return p.Errors[i].Field < p.Errors[j].Field })
		return p
	case errors.As(err, &invalid):
		detail := fmt.Sprintf("The input does not satisfy kind %q; see errors.", invalid.Kind)
		if invalid.Kind == "" {
			detail = "The submission is incomplete or invalid; see errors."
		}
		p := problem(http.StatusUnprocessableEntity, "invalid-input", "Invalid job input", detail)
		p.Errors = append([]job.FieldError(nil), invalid.Fields...)
		sort.Slice(p.Errors, func(i, j int) bool { return p.Errors[i].Field < p.Errors[j].Field })
		return p
	case errors.Is(err, job.ErrKeyReused):
		return problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
			"This Idempotency-Key was already used for a different request (kind, input or callbackUrl); use a new key for a new job.")
	case errors.As(err, &notFinished):
		j := notFinished.Job
		p := problem(http.StatusConflict, "job-not-succeeded", "The job has no result", "")
		if j.State.Terminal() {
			p.Detail = fmt.Sprintf("The job ended %s, without a result.", j.State)
			p.JobError = failureProblem(j)
		} else {
			p.Detail = fmt.Sprintf("The job is %s; follow statusUrl until it succeeds.", j.State)
		}
		p.JobID, p.State, p.StatusURL = j.ID, j.State, s.url(r, statusPath(j.ID))
		return p
	case errors.As(err, &finished):
		j := finished.Job
		p := problem(http.StatusConflict, "job-finished", "The job already finished", fmt.Sprintf("The job already %s; finished work cannot be canceled.", j.State))
		p.JobID, p.State, p.StatusURL = j.ID, j.State, s.url(r, statusPath(j.ID))
		return p
	case errors.Is(err, job.ErrOverloaded):
		s.log.WarnContext(r.Context(), "overloaded", "requestId", requestID(r.Context()), "error", err)
		p := problem(http.StatusServiceUnavailable, "overloaded", "Overloaded", "More work is queued than this deployment accepts; retry after the indicated delay.")
		p.retryAfter = 10
		return p
	case errors.Is(err, job.ErrUnavailable):
		s.log.WarnContext(r.Context(), "job engine unavailable", "requestId", requestID(r.Context()), "path", r.URL.Path, "error", err)
		p := problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The job engine is unreachable or overloaded; retry after the indicated delay.")
		p.retryAfter = 5
		return p
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		return problem(499, "client-closed", "Client closed request", "")
	}
	s.log.ErrorContext(r.Context(), "internal error", "requestId", requestID(r.Context()), "method", r.Method, "path", r.URL.Path, "error", err)
	return problem(http.StatusInternalServerError, "internal", "Internal server error", "Something went wrong on our side; it has been logged with the request id.")
}

// failureProblem is a failed or canceled job's error as a problem object.
func failureProblem(j *job.Job) *Problem {
	if j.Error == nil {
		return nil
	}
	name, title := "job-failed", "The job failed"
	if j.State == job.StateCanceled {
		name, title = "job-canceled", "The job was canceled"
	}
	p := &Problem{Type: ProblemBase + name, Title: title, Detail: j.Error.Message}
	if j.Error.Type != "" && j.Error.Type != "canceled" {
		p.Title += " (" + j.Error.Type + ")"
	}
	return p
}

// attemptProblem is a failed attempt's error (retry.lastError of a job
// that is tried again), shown as a job's own error is.
func attemptProblem(f job.Failure) *Problem {
	p := &Problem{Type: ProblemBase + "attempt-failed", Title: "The last attempt failed", Detail: f.Message}
	if f.Type != "" {
		p.Title += " (" + f.Type + ")"
	}
	return p
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.Error(w, r, problem(http.StatusNotFound, "no-such-endpoint", "No such endpoint", fmt.Sprintf("%s is not an endpoint of this API.", r.URL.Path)))
}

func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	p := problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		fmt.Sprintf("%s does not accept %s; allowed: %s.", r.URL.Path, r.Method, strings.Join(allow, ", ")))
	p.allow = allow
	s.Error(w, r, p)
}
