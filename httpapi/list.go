package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/jobgate/jobgate/job"
)

// listBody is the body of GET /v1/jobs.
type listBody struct {
	Jobs       []listedStatus `json:"jobs"`
	NextCursor *string        `json:"nextCursor"`
}

// listedStatus is a job's status as a listing shows it: Status, without
// the members the listing could not know (job.Job.Unknown), which GET
// shows. A member it shows is GET's. Its own members hide Status's of
// the same name (encoding/json prefers the shallower field); nil leaves
// one out.
type listedStatus struct {
	Status
	Progress            json.RawMessage `json:"progress,omitempty"`
	StartedAt           json.RawMessage `json:"startedAt,omitempty"`
	UpdatedAt           json.RawMessage `json:"updatedAt,omitempty"`
	Attempt             json.RawMessage `json:"attempt,omitempty"`
	EstimatedCompletion json.RawMessage `json:"estimatedCompletion,omitempty"`
	Error               json.RawMessage `json:"error,omitempty"`
	Callback            json.RawMessage `json:"callback,omitempty"`
	Steps               []listedStep    `json:"steps,omitempty"`
}

// listedStep is a step as a listing shows it: without the attempt of a
// running step, which is in its pending activity.
type listedStep struct {
	stepBody
	Attempt *int `json:"attempt,omitempty"`
}

func listed(st Status, j *job.Job) listedStatus {
	member := func(f job.Fields, v any) json.RawMessage {
		if j.Unknown.Has(f) {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return b
	}
	l := listedStatus{Status: st,
		Progress:            member(job.FieldProgress, st.Progress),
		StartedAt:           member(job.FieldStartedAt, st.StartedAt),
		UpdatedAt:           member(job.FieldUpdatedAt, st.UpdatedAt),
		Attempt:             member(job.FieldAttempt, st.Attempt),
		EstimatedCompletion: member(job.FieldEstimate, st.EstimatedCompletion),
		Error:               member(job.FieldFailure, st.Error),
		Callback:            member(job.FieldCallback, st.Callback),
	}
	for _, step := range st.Steps {
		ls := listedStep{stepBody: step}
		if step.State != job.StateRunning || !j.Unknown.Has(job.FieldStepAttempts) {
			ls.Attempt = &step.Attempt
		}
		l.Steps = append(l.Steps, ls)
	}
	return l
}

const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// handleList answers the caller's jobs, filtered by state and kind, a page
// at a time; the next page's cursor is in nextCursor and a Link header.
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := job.ListFilter{State: job.State(q.Get("state")), Kind: q.Get("kind"), Limit: defaultListLimit, Cursor: q.Get("cursor")}
	switch f.State {
	case "", job.StateScheduled, job.StateQueued, job.StateRunning, job.StateCanceling, job.StateSucceeded, job.StateFailed, job.StateCanceled:
	default:
		s.Error(w, r, badRequest("invalid-query", "Invalid query parameter",
			"state must be one of scheduled, queued, running, canceling, succeeded, failed, canceled; not "+strconv.Quote(string(f.State))+"."))
		return
	}
	if f.Kind != "" {
		if _, ok := s.kinds.Lookup(f.Kind); !ok {
			s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "kind "+strconv.Quote(f.Kind)+" is not a kind of this deployment; GET /v1/kinds lists them."))
			return
		}
	}
	if f.ScheduleID = q.Get("scheduleId"); f.ScheduleID != "" && !validScheduleID(f.ScheduleID) {
		s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "scheduleId "+strconv.Quote(f.ScheduleID)+" is not a schedule id (1-64 letters, digits, '-' or '_')."))
		return
	}
	if f.ParentID = q.Get("parentId"); f.ParentID != "" && !validJobID(f.ParentID) {
		s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "parentId "+strconv.Quote(f.ParentID)+" is not a job id (a UUID)."))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "limit must be a whole number from 1 to 100, not "+strconv.Quote(v)+"."))
			return
		}
		f.Limit = n
	}
	page, err := s.jobs.List(r.Context(), s.tenant(r), f)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body := listBody{Jobs: make([]listedStatus, 0, len(page.Jobs))}
	for _, j := range page.Jobs {
		body.Jobs = append(body.Jobs, listed(s.status(r, j), j))
	}
	if page.NextCursor != "" {
		body.NextCursor = &page.NextCursor
		next := url.Values{}
		for _, k := range []string{"state", "kind", "scheduleId", "parentId", "limit"} {
			if v := q.Get(k); v != "" {
				next.Set(k, v)
			}
		}
		next.Set("cursor", page.NextCursor)
		w.Header().Set("Link", "<"+s.url(r, "/v1/jobs?"+next.Encode())+`>; rel="next"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, body)
}

// validJobID reports whether id has the shape of a job id: a UUID.
func validJobID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
			return false
		}
	}
	return true
}
