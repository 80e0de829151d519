package job

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"strconv"
	"time"
)

// Job is a job's status as clients see it. The service fills it from the
// durable record of the job, so it is the same whichever API instance
// answers and whether or not a worker is running.
type Job struct {
	// ID is the job's identity: an unguessable UUID, derived from the tenant
	// and the Idempotency-Key when the client sent one.
	ID string
	// Tenant owns the job; every read and write is scoped to it.
	Tenant string
	// Kind names the registered kind of work.
	Kind string
	// State is where the job is in its life.
	State State
	// Progress is the last progress the work reported, if any.
	Progress *Progress
	// Attempt counts the tries of the current work, starting at 1: the
	// one running, or the one due next while the job waits to retry.
	Attempt int
	// Retry, on a running job whose work failed an attempt and is tried
	// again, says why that attempt failed and when the next one starts;
	// nil on a first attempt and once the job ended.
	Retry *Retry
	// CreatedAt is when the job was accepted.
	CreatedAt time.Time
	// StartedAt is when a worker first started the work (its first
	// attempt, however many follow); zero before.
	StartedAt time.Time
	// UpdatedAt is when anything about the job last changed.
	UpdatedAt time.Time
	// CompletedAt is when the job reached a terminal state; zero before.
	CompletedAt time.Time
	// ExpiresAt is when a finished job's status and result stop being
	// readable (CompletedAt plus the result TTL); zero before it finishes.
	ExpiresAt time.Time
	// EstimatedCompletion is CreatedAt plus the kind's expected duration.
	EstimatedCompletion time.Time
	// Error says why a failed or canceled job ended; nil otherwise.
	Error *Failure
	// Fingerprint identifies the request that created the job (kind, input
	// and callback), so a replayed Idempotency-Key can be told apart from a
	// reused one; empty for a job submitted without a key, which no other
	// request can name.
	Fingerprint string
	// Callback is the state of the job's webhook; nil for a job submitted
	// without a callbackUrl.
	Callback *Callback
	// ParentID is the job that started this one as a child job; empty for
	// a job a client submitted.
	ParentID string
	// WaitingFor lists the inputs a running job waits for, if any.
	WaitingFor []Waiting
	// Steps are a workflow kind's steps, in the order they started; nil
	// for kinds that are one activity.
	Steps []Step
	// ScheduledFor is when a job submitted with a start time (runAt or
	// delaySeconds) starts, or started; zero for a job that started at once.
	ScheduledFor time.Time
	// Priority is the job's dispatch priority, 1 (first) to 5 (last).
	Priority int
	// ScheduleID is the schedule that started the job; empty otherwise.
	ScheduleID string
	// RerunOf is the job this one reruns; empty otherwise.
	RerunOf string
	// Unknown names the fields the record this Job was read from could
	// not know (a listing's, which has only what Temporal's visibility
	// keeps); a client is shown them left out, never as zero values.
	Unknown Fields
}

// Fields is a set of a Job's fields, as a client sees them.
type Fields uint16

// The fields of a Job that a listing may not know.
const (
	FieldAttempt Fields = 1 << iota
	FieldStartedAt
	FieldUpdatedAt
	FieldProgress
	FieldFailure // Error
	FieldCallback
	FieldEstimate
	FieldRetry
	// FieldStepAttempts is the attempt of each running step.
	FieldStepAttempts
)

// Has reports whether f holds every field of g.
func (f Fields) Has(g Fields) bool { return f&g == g }

// Retry says that a running job's last attempt failed and another
// follows (its number is the job's Attempt).
type Retry struct {
	// LastError is why the last attempt failed, in words fit for the
	// client (as Job.Error).
	LastError Failure
	// LastAttemptAt is when the last attempt ended; zero when unknown.
	LastAttemptAt time.Time
	// NextAttemptAt is when the next attempt is due while the job waits
	// for it; zero once it is due (it runs, or waits for a worker).
	NextAttemptAt time.Time
	// MaxAttempts is how many attempts the work gets in all; 0 when
	// unbounded.
	MaxAttempts int
}

// Regresses reports whether j, a later look-up of the same unfinished
// job, shows less than prev did: an earlier update, a lower attempt, or
// no start or progress where prev had one. A status that a client has
// seen never moves back, so a watcher drops such a look-up (a finished
// job's status is final and never regresses: it is always taken).
func (j *Job) Regresses(prev *Job) bool {
	if prev == nil || j.State.Terminal() {
		return false
	}
	return j.UpdatedAt.Before(prev.UpdatedAt) || j.Attempt < prev.Attempt ||
		j.StartedAt.IsZero() && !prev.StartedAt.IsZero() ||
		j.Progress == nil && prev.Progress != nil
}

// ExpectedEnd is when the job is expected to end, as of now: its
// EstimatedCompletion, or, once that has passed for a job that reports
// progress (a multi-step job, typically), the end its progress predicts at
// the rate it has made since it started.
func (j *Job) ExpectedEnd(now time.Time) time.Time {
	end := j.EstimatedCompletion
	p := j.Progress
	if p == nil || p.Total <= 0 || p.Current <= 0 || j.StartedAt.IsZero() || !end.Before(now) || !now.After(j.StartedAt) {
		return end
	}
	elapsed := now.Sub(j.StartedAt)
	return j.StartedAt.Add(time.Duration(float64(elapsed) * float64(p.Total) / float64(p.Current)))
}

// Waiting is an input a running job waits for
// (POST /v1/jobs/{id}/inputs/{name} delivers it).
type Waiting struct {
	Name string
	// Since is when the job started waiting; zero when its worker did not
	// say.
	Since time.Time
}

// Step is one step of a workflow kind: an activity, or a child job.
type Step struct {
	Name  string
	State State
	// Attempt counts the tries of a running step, starting at 1.
	Attempt     int
	StartedAt   time.Time
	CompletedAt time.Time
	// JobID is the child job a step runs, if it is one.
	JobID string
	// Error says why a failed step failed.
	Error string
}

// CallbackState is where a job's webhook delivery is.
type CallbackState string

const (
	// CallbackPending means the webhook is not delivered yet: the job has
	// not ended, or delivery is being tried (and retried with backoff).
	CallbackPending CallbackState = "pending"
	// CallbackDelivered means the receiver answered 2xx.
	CallbackDelivered CallbackState = "delivered"
	// CallbackFailed means delivery gave up: retries ran out, or the URL
	// cannot be delivered to (a refused destination, no signing secret).
	CallbackFailed CallbackState = "failed"
	// CallbackGone means the receiver answered 410 Gone: it wants no more.
	CallbackGone CallbackState = "gone"
)

// Final reports whether no further delivery attempt follows.
func (s CallbackState) Final() bool { return s != CallbackPending && s != "" }

// Callback is the state of a job's webhook delivery.
type Callback struct {
	State CallbackState
	// Attempts counts the delivery attempts made so far.
	Attempts int
	// LastStatus is the HTTP status the receiver last answered; 0 when it
	// did not answer (or before the first attempt).
	LastStatus int
	// LastAttemptAt is when the last attempt ended; zero before the first.
	LastAttemptAt time.Time
	// LastError says why the last attempt failed; empty after a success.
	LastError string
	// NextAttemptAt is when the next attempt is due, while pending after a
	// failed attempt; zero otherwise.
	NextAttemptAt time.Time
}

// ResultStream is a succeeded job's result, opened for reading: a small
// JSON result from the job's record, or a file from blob storage. It can
// seek, so it serves range requests. The caller closes it.
type ResultStream struct {
	// Content is the result's bytes.
	Content io.ReadSeekCloser
	// Size is the length of Content in bytes.
	Size int64
	// ContentType is the result's media type ("application/json").
	ContentType string
	// Filename, when set, is the name a download suggests.
	Filename string
	// ModTime is when the result was written.
	ModTime time.Time
	// Digest is the hex SHA-256 of Content, when known.
	Digest string
}

// Progress is what a running job last reported about itself.
type Progress struct {
	// Current counts units done; Total the units expected (0 if unknown).
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
	// Message is a short human-readable description of the progress.
	Message string `json:"message,omitempty"`
}

// Percent is Current as a whole percentage of Total, or -1 when the total is
// unknown.
func (p Progress) Percent() int {
	if p.Total <= 0 {
		return -1
	}
	pct := p.Current * 100 / p.Total
	switch {
	case pct < 0:
		return 0
	case pct > 100:
		return 100
	}
	return int(pct)
}

// Failure says why a job did not succeed, in words fit for the client: the
// work's own error message, never an engine's internals.
type Failure struct {
	// Type is a short machine-readable reason ("canceled", "timeout", or the
	// kind's own error type).
	Type string
	// Message is the human-readable explanation.
	Message string
}

// SubmitRequest is a request to run a job.
type SubmitRequest struct {
	// Tenant owns the job.
	Tenant string
	// IdempotencyKey, when not empty, makes the submission safe to retry:
	// one key is one job per tenant.
	IdempotencyKey string
	// Kind names a registered kind; Input is validated against it.
	Kind  string
	Input json.RawMessage
	// CallbackURL, when not empty, is notified when the job ends.
	CallbackURL string
	// RequestID identifies the HTTP request that submitted the job, for
	// tracing a job back to jobgate's logs.
	RequestID string
	// MaxActive, when positive, refuses a new job (*QuotaError) while the
	// tenant has that many queued or running jobs; a replay of an existing
	// key is still answered.
	MaxActive int
	// RunAt, when in the future, defers the job's start until then (the
	// job is StateScheduled until it comes); zero or past starts it now.
	RunAt time.Time
	// Priority is 1 (dispatched first) to 5 (last); 0 means DefaultPriority.
	Priority int
	// FairnessWeight is the tenant's share of workers under fair dispatch
	// between tenants, relative to other tenants'; 0 means 1.
	FairnessWeight float64
	// RerunOf names the finished job this one reruns.
	RerunOf string
}

// Priorities of jobs: 1 is dispatched first, 5 last.
const (
	MinPriority     = 1
	MaxPriority     = 5
	DefaultPriority = 3
)

// Service runs jobs durably. Its implementations translate their engine's
// errors into this package's errors at their boundary.
type Service interface {
	// Submit validates and accepts a job. created is false when the
	// Idempotency-Key named an existing job with the same request, which is
	// then returned. Errors: *UnknownKindError, *ValidationError,
	// ErrKeyReused, *QuotaError, ErrOverloaded, ErrUnavailable.
	Submit(ctx context.Context, req SubmitRequest) (j *Job, created bool, err error)
	// Get returns the job's current status. Errors: ErrNotFound,
	// ErrExpired, ErrUnavailable.
	Get(ctx context.Context, tenant, id string) (*Job, error)
	// OpenResult opens a succeeded job's result for streaming; the caller
	// closes it. Errors: ErrNotFound, ErrExpired, *NotFinishedError,
	// ErrUnavailable.
	OpenResult(ctx context.Context, tenant, id string) (*ResultStream, *Job, error)
	// Cancel requests cancellation of a queued or running job and returns
	// its status after the request. Errors: ErrNotFound, ErrExpired,
	// *FinishedError, ErrUnavailable.
	Cancel(ctx context.Context, tenant, id string) (*Job, error)
	// Rerun submits, as Submit does, a new job with the kind, input,
	// callback and priority of the finished job id of req.Tenant; a
	// non-empty req.Input replaces the input. req's key, request id, quota
	// and weight apply as to a submission. Errors: as Submit, and
	// ErrNotFound, ErrExpired, *NotFinishedError for a job that has not
	// finished.
	Rerun(ctx context.Context, id string, req SubmitRequest) (j *Job, created bool, err error)
	// Watch returns the job as soon as its Version differs from version,
	// or when ctx ends (then with its current status and no error). A
	// finished job is returned at once. Many watchers of one job share one
	// look-up loop. Errors: as Get.
	Watch(ctx context.Context, tenant, id, version string) (*Job, error)
	// Await returns the job once it has finished, or when ctx ends (then
	// with its current status). last is the job's status as the caller
	// knows it (as Submit returned it). Unlike Watch it is not woken by
	// progress, so waiting costs no look-ups while the job runs. Errors:
	// as Get.
	Await(ctx context.Context, tenant string, last *Job) (*Job, error)
	// List returns the tenant's jobs matching filter, a page at a time.
	// Errors: *InvalidCursorError, ErrUnavailable.
	List(ctx context.Context, tenant string, filter ListFilter) (*Page, error)
	// CountActive returns how many of the tenant's jobs are queued or
	// running, as of at most a second ago. Errors: ErrUnavailable.
	CountActive(ctx context.Context, tenant string) (int, error)
	// Ready reports whether the service can accept and run jobs now.
	Ready(ctx context.Context) error
	// SendInput delivers input name to a running job that waits for it
	// and returns the job's status once the job has taken it. key, when
	// not empty, identifies the delivery: one key is taken once. Errors:
	// ErrNotFound, ErrExpired, *UnknownInputError, *ValidationError,
	// *InputRejectedError, *NotWaitingError, ErrUnavailable.
	SendInput(ctx context.Context, tenant, id, name, key string, body json.RawMessage) (*Job, error)
}

// Version identifies what a client can see change in a job: its state,
// progress, attempt, retry, start, completion, error, waits, steps and
// webhook delivery. It is stable while
// nothing of that changes (the time of the last heartbeat is left out), so
// it serves as an ETag and as the cursor of long-polls and event streams.
func (j *Job) Version() string {
	// Appends rather than fmt: it runs on every status read.
	b := make([]byte, 0, 128)
	b = append(append(b, j.State...), '|')
	b = append(strconv.AppendInt(b, int64(j.Attempt), 10), '|')
	b = append(strconv.AppendInt(b, j.StartedAt.UnixNano(), 10), '|')
	b = append(strconv.AppendInt(b, j.CompletedAt.UnixNano(), 10), '|')
	if p := j.Progress; p != nil {
		b = append(strconv.AppendInt(b, p.Current, 10), '|')
		b = append(strconv.AppendInt(b, p.Total, 10), '|')
		b = append(append(b, p.Message...), '|')
	}
	if e := j.Error; e != nil {
		b = append(append(b, e.Type...), '|')
		b = append(append(b, e.Message...), '|')
	}
	if r := j.Retry; r != nil {
		b = append(append(b, "r:"+r.LastError.Type...), '|')
		b = append(append(b, r.LastError.Message...), '|')
		b = append(strconv.AppendInt(b, r.NextAttemptAt.UnixNano(), 10), '|')
	}
	for _, w := range j.WaitingFor {
		b = append(append(b, "w:"+w.Name...), '|')
	}
	for _, st := range j.Steps {
		b = append(append(append(b, st.Name...), st.State...), '|')
		b = append(strconv.AppendInt(b, int64(st.Attempt), 10), '|')
	}
	if c := j.Callback; c != nil {
		b = append(append(b, c.State...), '|')
		b = append(strconv.AppendInt(b, int64(c.Attempts), 10), '|')
		b = strconv.AppendInt(b, int64(c.LastStatus), 10)
	}
	h := fnv.New64a()
	h.Write(b)
	return strconv.FormatUint(h.Sum64(), 36)
}

// ListFilter selects the jobs a listing returns.
type ListFilter struct {
	// State, when set, keeps jobs in that state.
	State State
	// Kind, when set, keeps jobs of that kind.
	Kind string
	// Limit is the page size.
	Limit int
	// Cursor continues a previous listing; it came from its NextCursor.
	Cursor string
	// CreatedFrom and CreatedTo, when not zero, keep jobs created at or
	// after CreatedFrom and before CreatedTo.
	CreatedFrom, CreatedTo time.Time
	// ScheduleID, when set, keeps the runs of that schedule.
	ScheduleID string
	// ParentID, when set, keeps the child jobs of that job.
	ParentID string
}

// Lister lists a tenant's jobs; job.Service is one.
type Lister interface {
	// List returns the tenant's jobs matching filter, a page at a time.
	List(ctx context.Context, tenant string, filter ListFilter) (*Page, error)
}

// Page is one page of a listing.
type Page struct {
	Jobs []*Job
	// NextCursor continues the listing; empty on the last page.
	NextCursor string
}
