package job

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

var (
	// ErrNotFound means there is no such job for this tenant. Another
	// tenant's job is not found either.
	ErrNotFound = errors.New("job not found")
	// ErrKeyReused means an Idempotency-Key was sent again with a different
	// request than the one that created its job.
	ErrKeyReused = errors.New("idempotency key already used for a different request")
	// ErrExpired means the job finished longer ago than the result TTL: its
	// status and result are gone, though its id is still known.
	ErrExpired = errors.New("job expired")
	// ErrOverloaded means more work waits for workers than the deployment
	// accepts; the client should retry later.
	ErrOverloaded = errors.New("too much work queued")
	// ErrNoWorker means no worker polls for jobs: accepted jobs wait.
	ErrNoWorker = errors.New("no worker polling")
	// ErrUnavailable means the job engine cannot be reached or did not
	// answer in time; the client should retry later.
	ErrUnavailable = errors.New("job engine unavailable")
)

// NoWorkerError is ErrNoWorker for the task queues no worker polls (an
// external kind's queue has workers of its own, which may be missing
// alone).
type NoWorkerError struct {
	TaskQueues []string
}

func (e *NoWorkerError) Error() string {
	return fmt.Sprintf("%v: task queues %q", ErrNoWorker, e.TaskQueues)
}

// Is makes errors.Is(err, ErrNoWorker) hold.
func (e *NoWorkerError) Is(target error) bool { return target == ErrNoWorker }

// UnknownKindError is returned for a kind that is not registered.
type UnknownKindError struct {
	Kind  string
	Known []string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown job kind %q; registered kinds: %s", e.Kind, strings.Join(e.Known, ", "))
}

// FieldError is one problem with one field of a job's input.
type FieldError struct {
	// Field is a JSON pointer into the request body ("/input/seconds").
	Field string `json:"field"`
	// Message says what is wrong and what is expected.
	Message string `json:"message"`
}

// ValidationError is returned when a job's input fails its kind's rules,
// or an input delivered to a running job fails its schema.
type ValidationError struct {
	Kind string
	// Input names the delivered input that failed; empty for a job's own
	// input.
	Input  string
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Field + ": " + f.Message
	}
	sort.Strings(msgs)
	if e.Input != "" {
		return fmt.Sprintf("invalid input %q for a job of kind %q: %s", e.Input, e.Kind, strings.Join(msgs, "; "))
	}
	if e.Kind == "" {
		// A request's own errors (a schedule's spec, a backfill's range).
		return "invalid request: " + strings.Join(msgs, "; ")
	}
	return fmt.Sprintf("invalid input for kind %q: %s", e.Kind, strings.Join(msgs, "; "))
}

// UnknownInputError is returned for an input a job's kind does not have.
type UnknownInputError struct {
	Kind, Input string
	Known       []string
}

func (e *UnknownInputError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("jobs of kind %q take no inputs (asked for %q)", e.Kind, e.Input)
	}
	return fmt.Sprintf("jobs of kind %q have no input %q; their inputs: %s", e.Kind, e.Input, strings.Join(e.Known, ", "))
}

// NotWaitingError is returned for an input delivered to a job that is not
// waiting for it: it has ended, or it waits for something else (or for
// nothing) now.
type NotWaitingError struct {
	Job   *Job
	Input string
}

func (e *NotWaitingError) Error() string {
	if e.Job.State.Terminal() {
		return fmt.Sprintf("job %s already %s; it takes no more inputs", e.Job.ID, e.Job.State)
	}
	return fmt.Sprintf("job %s is not waiting for input %q now", e.Job.ID, e.Input)
}

// InputRejectedError is returned when a running job's own validation
// refused an input (its schema held).
type InputRejectedError struct {
	Input, Reason string
}

func (e *InputRejectedError) Error() string {
	return fmt.Sprintf("the job refused input %q: %s", e.Input, e.Reason)
}

// NotFinishedError is returned when a job's result is asked for before the
// job succeeded: it is still running, or it failed or was canceled.
type NotFinishedError struct {
	Job *Job
}

func (e *NotFinishedError) Error() string {
	return fmt.Sprintf("job %s has no result: it is %s", e.Job.ID, e.Job.State)
}

// FinishedError is returned when finished work is asked to cancel.
type FinishedError struct {
	Job *Job
}

func (e *FinishedError) Error() string {
	return fmt.Sprintf("job %s already %s and cannot be canceled", e.Job.ID, e.Job.State)
}

// InvalidCursorError is returned for a listing cursor that is malformed or
// was issued for other filters.
type InvalidCursorError struct {
	Reason string
}

func (e *InvalidCursorError) Error() string { return "invalid cursor: " + e.Reason }

// BlobQuotaError is returned for a new job while the tenant's blobs
// (results, exports, checkpoints) already fill its blob storage quota.
type BlobQuotaError struct {
	Used, Limit int64
}

func (e *BlobQuotaError) Error() string {
	return fmt.Sprintf("the tenant's blob storage holds %d bytes, its quota of %d", e.Used, e.Limit)
}

// QuotaError is returned for a new job while the tenant already has its
// maximum of queued and running jobs.
type QuotaError struct {
	Active, Limit int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("the tenant has %d active jobs, its maximum of %d", e.Active, e.Limit)
}
