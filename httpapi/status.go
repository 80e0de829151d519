package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jobgate/jobgate/job"
)

// Status is a job's status as the contract shows it: the body of status
// answers, events and listings, and the data of webhooks.
type Status struct {
	ID          string        `json:"id"`
	Kind        string        `json:"kind"`
	State       job.State     `json:"state"`
	Progress    *progressBody `json:"progress"`
	CreatedAt   Timestamp     `json:"createdAt"`
	StartedAt   *Timestamp    `json:"startedAt"`
	UpdatedAt   Timestamp     `json:"updatedAt"`
	CompletedAt *Timestamp    `json:"completedAt"`
	Attempt     int           `json:"attempt"`
	// Retry is set on a running job whose last attempt failed and which
	// is tried again.
	Retry               *retryBody    `json:"retry,omitempty"`
	EstimatedCompletion *Timestamp    `json:"estimatedCompletion"`
	StatusURL           string        `json:"statusUrl"`
	ResultURL           *string       `json:"resultUrl"`
	Error               *Problem      `json:"error"`
	Callback            *callbackBody `json:"callback"`
	// ParentID is set on a child job: the job that started it.
	ParentID string `json:"parentId,omitempty"`
	// WaitingFor lists the inputs a running job waits for.
	WaitingFor []waitingBody `json:"waitingFor,omitempty"`
	// Steps are a workflow kind's steps.
	Steps []stepBody `json:"steps,omitempty"`
	// Priority is the job's dispatch priority, 1 (first) to 5 (last).
	Priority int `json:"priority"`
	// ScheduledFor is when a job submitted with runAt or delaySeconds
	// starts (or started).
	ScheduledFor *Timestamp `json:"scheduledFor,omitempty"`
	// ScheduleID is the schedule that started the job.
	ScheduleID string `json:"scheduleId,omitempty"`
	// RerunOf is the job this one reruns.
	RerunOf string `json:"rerunOf,omitempty"`
}

// waitingBody is an input a running job waits for.
type waitingBody struct {
	Name  string     `json:"name"`
	Since *Timestamp `json:"since,omitempty"`
	URL   string     `json:"url"`
}

// stepBody is one step of a workflow kind.
type stepBody struct {
	Name        string     `json:"name"`
	State       job.State  `json:"state"`
	Attempt     int        `json:"attempt"`
	StartedAt   *Timestamp `json:"startedAt"`
	CompletedAt *Timestamp `json:"completedAt"`
	JobID       string     `json:"jobId,omitempty"`
	Error       string     `json:"error,omitempty"`
}

func inputPath(id, name string) string { return "/v1/jobs/" + id + "/inputs/" + name }

// callbackBody is the state of a job's webhook delivery.
type callbackBody struct {
	State         job.CallbackState `json:"state"`
	Attempts      int               `json:"attempts"`
	LastStatus    int               `json:"lastStatus,omitempty"`
	LastAttemptAt *Timestamp        `json:"lastAttemptAt,omitempty"`
	LastError     string            `json:"lastError,omitempty"`
	NextAttemptAt *Timestamp        `json:"nextAttemptAt,omitempty"`
}

// retryBody says why a running job's last attempt failed and when the
// next one (the status's attempt) starts.
type retryBody struct {
	LastError     *Problem   `json:"lastError"`
	LastAttemptAt *Timestamp `json:"lastAttemptAt,omitempty"`
	NextAttemptAt *Timestamp `json:"nextAttemptAt,omitempty"`
	MaxAttempts   int        `json:"maxAttempts,omitempty"`
}

type progressBody struct {
	Percent *int   `json:"percent"`
	Current int64  `json:"current"`
	Total   int64  `json:"total"`
	Message string `json:"message,omitempty"`
}

func statusPath(id string) string { return "/v1/jobs/" + id }
func resultPath(id string) string { return "/v1/jobs/" + id + "/result" }

// status renders j for the client of r.
func (s *Server) status(r *http.Request, j *job.Job) Status {
	return NewStatus(j, s.base(r))
}

// base is the client-facing base of URLs for r: PublicURL when set, else
// the scheme and host a trusted proxy forwarded, else "" (absolute paths).
func (s *Server) base(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	return s.forwardedBase(r)
}

// NewStatus renders j as the contract shows it, with its URLs under base
// ("https://jobs.example.com"; "" gives absolute paths). A webhook's data
// is NewStatus under the deployment's public URL.
func NewStatus(j *job.Job, base string) Status {
	b := Status{
		ID:        j.ID,
		Kind:      j.Kind,
		State:     j.State,
		CreatedAt: Timestamp(j.CreatedAt),
		UpdatedAt: Timestamp(j.UpdatedAt),
		Attempt:   j.Attempt,
		StatusURL: base + statusPath(j.ID),
		StartedAt: timeOrNil(j.StartedAt),
		Error:     failureProblem(j),
	}
	if !j.State.Terminal() {
		// As of the job's last change, so the body stays the same while
		// nothing changes.
		b.EstimatedCompletion = timeOrNil(j.ExpectedEnd(j.UpdatedAt))
	} else {
		b.CompletedAt = timeOrNil(j.CompletedAt)
	}
	if j.Progress != nil {
		b.Progress = &progressBody{Current: j.Progress.Current, Total: j.Progress.Total, Message: j.Progress.Message}
		pct := j.Progress.Percent()
		if j.State == job.StateSucceeded {
			pct = 100
		}
		if pct >= 0 {
			b.Progress.Percent = &pct
		}
	}
	if j.State == job.StateSucceeded {
		u := base + resultPath(j.ID)
		b.ResultURL = &u
	}
	b.ParentID = j.ParentID
	b.Priority, b.ScheduledFor, b.ScheduleID, b.RerunOf = j.Priority, timeOrNil(j.ScheduledFor), j.ScheduleID, j.RerunOf
	if b.Priority == 0 {
		b.Priority = job.DefaultPriority
	}
	for _, w := range j.WaitingFor {
		b.WaitingFor = append(b.WaitingFor, waitingBody{Name: w.Name, Since: timeOrNil(w.Since), URL: base + inputPath(j.ID, w.Name)})
	}
	if len(j.WaitingFor) > 0 {
		// Nobody can say when a person or another system answers.
		b.EstimatedCompletion = nil
	}
	for _, st := range j.Steps {
		b.Steps = append(b.Steps, stepBody{Name: st.Name, State: st.State, Attempt: max(st.Attempt, 1), StartedAt: timeOrNil(st.StartedAt),
			CompletedAt: timeOrNil(st.CompletedAt), JobID: st.JobID, Error: st.Error})
	}
	if r := j.Retry; r != nil && !j.State.Terminal() {
		b.Retry = &retryBody{LastError: attemptProblem(r.LastError), LastAttemptAt: timeOrNil(r.LastAttemptAt),
			NextAttemptAt: timeOrNil(r.NextAttemptAt), MaxAttempts: r.MaxAttempts}
	}
	if c := j.Callback; c != nil {
		b.Callback = &callbackBody{State: c.State, Attempts: c.Attempts, LastStatus: c.LastStatus,
			LastAttemptAt: timeOrNil(c.LastAttemptAt), LastError: c.LastError, NextAttemptAt: timeOrNil(c.NextAttemptAt)}
	}
	return b
}

func timeOrNil(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	u := Timestamp(t)
	return &u
}

// Timestamp is a time in a status body: RFC 3339 in UTC, to the
// nanosecond when there are any, as time.Time's own JSON. It marshals as
// text, which the JSON encoder quotes as it goes, where a MarshalJSON's
// output would be parsed again and compacted (measurable on status reads).
type Timestamp time.Time

// MarshalText implements encoding.TextMarshaler.
func (t Timestamp) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, len(time.RFC3339Nano)), time.RFC3339Nano), nil
}

// retryAfter is how many seconds a client should wait before polling j
// again: until its estimated completion, at least 1 and at most 60. A job
// that waits for an input is polled every waitingRetryAfter seconds (or
// long-polled), and a multi-step job past its estimate is expected to end
// when its progress, at the rate it has made so far, says.
func (s *Server) retryAfter(j *job.Job) string {
	if j.State == job.StateCanceling {
		// The work sees the cancel at its next heartbeat, about a second.
		return "1"
	}
	if len(j.WaitingFor) > 0 {
		return strconv.Itoa(waitingRetryAfter)
	}
	now := s.cfg.Now()
	secs := math.Ceil(j.ExpectedEnd(now).Sub(now).Seconds())
	return strconv.Itoa(int(min(max(secs, 1), 60)))
}

// waitingRetryAfter is the Retry-After of a job waiting for an input.
const waitingRetryAfter = 10

// etag is the job's entity tag: weak, since the status body's updatedAt may
// move while nothing a client acts on changes.
func etag(j *job.Job) string { return `W/"` + j.Version() + `"` }

// versionOf is the job version in the first entity tag of an If-None-Match
// value, or "" when there is none.
func versionOf(ifNoneMatch string) string {
	first, _, _ := strings.Cut(ifNoneMatch, ",")
	first = strings.TrimPrefix(strings.TrimSpace(first), "W/")
	if first == "*" {
		return ""
	}
	return strings.Trim(first, `"`)
}

// etagMatches reports whether an If-None-Match value names tag.
func etagMatches(ifNoneMatch, tag string) bool {
	if ifNoneMatch == "" {
		return false
	}
	for _, candidate := range strings.Split(ifNoneMatch, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == strings.TrimPrefix(tag, "W/") {
			return true
		}
	}
	return false
}

// statusHeaders sets the headers every status answer carries.
func (s *Server) statusHeaders(w http.ResponseWriter, j *job.Job, etag string) {
	h := w.Header()
	h["Cache-Control"] = noStore // shared, as secureHeaders'
	h.Set("ETag", etag)
	if !j.State.Terminal() {
		h.Set("Retry-After", s.retryAfter(j))
	}
	if !j.ExpiresAt.IsZero() {
		h.Set("Expires", j.ExpiresAt.UTC().Format(http.TimeFormat))
	}
}

var noStore = []string{"no-store"}

// writeStatus answers with j's status and code; a 303 points at the result.
func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request, code int, j *job.Job) {
	s.writeStatusTagged(w, r, code, j, etag(j))
}

// writeStatusTagged is writeStatus with j's etag computed already.
func (s *Server) writeStatusTagged(w http.ResponseWriter, r *http.Request, code int, j *job.Job, etag string) {
	s.statusHeaders(w, j, etag)
	if code == http.StatusSeeOther {
		w.Header().Set("Location", s.url(r, resultPath(j.ID)))
	}
	if cacheable(j) {
		if body, err := s.finished.body(j, etag, s.base(r)); err == nil {
			writeEncoded(w, r, code, "application/json", body)
			return
		}
	}
	writeJSON(w, r, code, s.status(r, j))
}
