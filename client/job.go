package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// State is where a job is in its life, in the vocabulary of Azure's and
// Google's long-running operations.
type State string

const (
	// StateScheduled means the job was submitted with a start time
	// (SubmitRequest.RunAt, Delay) that has not come yet.
	StateScheduled State = "scheduled"
	// StateQueued means the job is accepted and no worker has started it yet.
	StateQueued State = "queued"
	// StateRunning means a worker is on the job.
	StateRunning State = "running"
	// StateCanceling means cancellation was requested and the work is
	// cleaning up.
	StateCanceling State = "canceling"
	// StateSucceeded means the job is done and its result is readable
	// (Client.Result).
	StateSucceeded State = "succeeded"
	// StateFailed means the job ended without a result; Job.Error says why.
	StateFailed State = "failed"
	// StateCanceled means the job was stopped on request; no retry follows.
	StateCanceled State = "canceled"
)

// Terminal reports whether s is a final state: succeeded, failed or
// canceled. A job in a final state never changes again.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCanceled:
		return true
	}
	return false
}

// Job is a job's status as the server answered it: the status body of the
// contract, plus what the answer's headers said (Replayed, RetryAfter,
// ETag).
type Job struct {
	// ID identifies the job in every other call.
	ID string `json:"id"`
	// Kind names the kind of work.
	Kind string `json:"kind"`
	// State is where the job is in its life.
	State State `json:"state"`
	// Progress is what the work last reported; nil before it reported any.
	Progress *Progress `json:"progress"`
	// CreatedAt is when the job was accepted.
	CreatedAt time.Time `json:"createdAt"`
	// StartedAt is when a worker started the work; nil before.
	StartedAt *time.Time `json:"startedAt"`
	// UpdatedAt is when anything about the job last changed.
	UpdatedAt time.Time `json:"updatedAt"`
	// CompletedAt is when the job reached a terminal state; nil before.
	CompletedAt *time.Time `json:"completedAt"`
	// Attempt counts the tries of the work, starting at 1.
	Attempt int `json:"attempt"`
	// EstimatedCompletion is when the server expects the job to end; nil
	// when it does not say.
	EstimatedCompletion *time.Time `json:"estimatedCompletion"`
	// StatusURL is the job's status monitor as the server wrote it: an
	// absolute URL or a path.
	StatusURL string `json:"statusUrl"`
	// ResultURL is where the result of a succeeded job is, as the server
	// wrote it; empty before the job succeeded.
	ResultURL string `json:"resultUrl"`
	// Error says why a failed or canceled job ended; nil otherwise.
	Error *Problem `json:"error"`
	// Callback is the webhook delivery state of a job submitted with a
	// CallbackURL, as the server sent it; nil when there is none.
	Callback json.RawMessage `json:"callback"`
	// ParentID is, for a child job, the job that started it.
	ParentID string `json:"parentId,omitempty"`
	// WaitingFor lists the inputs a running job waits for (SendInput
	// delivers one).
	WaitingFor []Waiting `json:"waitingFor,omitempty"`
	// Steps are a workflow kind's steps.
	Steps []Step `json:"steps,omitempty"`
	// Priority is the job's dispatch priority, 1 (first) to 5 (last).
	Priority int `json:"priority"`
	// ScheduledFor is when a delayed job starts (or started); nil for one
	// that started at once.
	ScheduledFor *time.Time `json:"scheduledFor,omitempty"`
	// ScheduleID is the schedule that started the job; empty otherwise.
	ScheduleID string `json:"scheduleId,omitempty"`
	// RerunOf is the job this one reruns (Client.Rerun); empty otherwise.
	RerunOf string `json:"rerunOf,omitempty"`

	// Replayed is true when the answer was to a repeated Idempotency-Key:
	// the job is the one the key created earlier (Idempotent-Replayed).
	Replayed bool `json:"-"`
	// RetryAfter is how long the server asked the client to wait before
	// polling again (Retry-After); zero when it did not say.
	RetryAfter time.Duration `json:"-"`
	// ETag identifies this version of the status, for GetIfChanged.
	ETag string `json:"-"`
}

// Progress is what a running job last reported about itself.
type Progress struct {
	// Percent is Current as a whole percentage of Total; nil when the total
	// is unknown.
	Percent *int `json:"percent"`
	// Current counts the units done.
	Current int64 `json:"current"`
	// Total is the units expected; 0 if unknown.
	Total int64 `json:"total"`
	// Message describes the progress for humans.
	Message string `json:"message,omitempty"`
}

// decodeJob reads a status body and the headers that came with it, and
// closes the body.
func decodeJob(resp *http.Response) (*Job, error) {
	defer drainClose(resp.Body)
	var j Job
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes)).Decode(&j); err != nil {
		return nil, fmt.Errorf("jobgate client: reading the job status of %s %s (%s): %w",
			resp.Request.Method, resp.Request.URL.Redacted(), resp.Status, err)
	}
	if string(j.Callback) == "null" {
		j.Callback = nil
	}
	readHeaders(&j, resp.Header)
	return &j, nil
}

// readHeaders fills the fields of j that come from the answer's headers.
func readHeaders(j *Job, h http.Header) {
	j.RetryAfter = parseRetryAfter(h.Get("Retry-After"), time.Now())
	j.ETag = h.Get("ETag")
	v := strings.TrimSpace(h.Get("Idempotent-Replayed"))
	j.Replayed = strings.EqualFold(v, "true") || v == "?1"
}

// sameStatus reports whether a and b are the same version of a job's
// status, by ETag when both have one.
func sameStatus(a, b *Job) bool {
	if a == nil || b == nil {
		return false
	}
	if a.ETag != "" && b.ETag != "" {
		return a.ETag == b.ETag
	}
	if a.State != b.State || !a.UpdatedAt.Equal(b.UpdatedAt) || (a.Progress == nil) != (b.Progress == nil) {
		return false
	}
	return a.Progress == nil || (a.Progress.Current == b.Progress.Current &&
		a.Progress.Total == b.Progress.Total && a.Progress.Message == b.Progress.Message)
}

// Waiting is an input a running job waits for.
type Waiting struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
	// URL is where the input is POSTed, as the server wrote it.
	URL string `json:"url"`
}

// Step is one step of a workflow kind's job.
type Step struct {
	Name        string     `json:"name"`
	State       State      `json:"state"`
	Attempt     int        `json:"attempt"`
	StartedAt   *time.Time `json:"startedAt"`
	CompletedAt *time.Time `json:"completedAt"`
	// JobID is the child job a step runs, if it is one.
	JobID string `json:"jobId,omitempty"`
	Error string `json:"error,omitempty"`
}
