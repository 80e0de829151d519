package httpapi

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// Generic long-running-operation clients (Azure's SDK pollers, which every
// Azure SDK shares) follow Operation-Location rather than Location and read
// the monitor's "status" until it is Succeeded, Failed or Canceled; a job's
// own status answers 200 with state "running", which such a poller given
// only Location would take for done. The operation monitor is the same job
// in that vocabulary.

// operationBody is a job as an Azure long-running-operation status
// monitor answers it.
type operationBody struct {
	ID                 string    `json:"id"`
	Status             string    `json:"status"`
	CreatedDateTime    Timestamp `json:"createdDateTime"`
	LastActionDateTime Timestamp `json:"lastActionDateTime"`
	PercentComplete    *int      `json:"percentComplete,omitempty"`
	// ResourceLocation is the result's URL once the job succeeded.
	ResourceLocation *string `json:"resourceLocation"`
	// Error says why a failed or canceled job ended.
	Error *operationError `json:"error"`
}

// operationError is Azure's error object.
type operationError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// operationStatus is a job state in Azure's operation status vocabulary.
func operationStatus(s job.State) string {
	switch s {
	case job.StateScheduled, job.StateQueued:
		return "NotStarted"
	case job.StateSucceeded:
		return "Succeeded"
	case job.StateFailed:
		return "Failed"
	case job.StateCanceled:
		return "Canceled"
	}
	// Running and canceling, and any state added later that is not
	// terminal: a poller keeps polling.
	return "Running"
}

func operationPath(id string) string { return "/v1/operations/" + id }

// handleOperation answers the job as an operation status monitor: always
// 200 with its status (Retry-After while it runs), the result's URL once
// it succeeded; the job errors of GET /v1/jobs/{id} as problems.
func (s *Server) handleOperation(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Get(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body := operationBody{
		ID:                 j.ID,
		Status:             operationStatus(j.State),
		CreatedDateTime:    Timestamp(j.CreatedAt),
		LastActionDateTime: Timestamp(j.UpdatedAt),
	}
	if j.Progress != nil {
		if pct := j.Progress.Percent(); pct >= 0 {
			body.PercentComplete = &pct
		}
	}
	switch j.State {
	case job.StateSucceeded:
		loc := s.absoluteURL(r, resultPath(j.ID))
		body.ResourceLocation = &loc
	case job.StateFailed, job.StateCanceled:
		body.Error = &operationError{Code: string(j.State), Message: "The job " + string(j.State) + "."}
		if j.Error != nil {
			body.Error.Message = j.Error.Message
			if j.Error.Type != "" {
				body.Error.Code = j.Error.Type
			}
		}
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if !j.State.Terminal() {
		h.Set("Retry-After", s.retryAfter(j))
	}
	if !j.ExpiresAt.IsZero() {
		h.Set("Expires", j.ExpiresAt.UTC().Format(http.TimeFormat))
	}
	writeJSON(w, r, http.StatusOK, body)
}

// absoluteURL is path as an absolute URL: under the public base when one
// is configured or forwarded by a trusted proxy, else under the scheme and
// Host the client used. Azure's pollers refuse a relative
// Operation-Location or resourceLocation.
func (s *Server) absoluteURL(r *http.Request, path string) string {
	if u := s.url(r, path); u != path {
		return u
	}
	host := r.Host
	if host == "" || strings.ContainsAny(host, "/\\@ ?#") {
		return path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + host + path
}
