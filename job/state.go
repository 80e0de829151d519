// Package job is jobgate's domain: what a job is, the states it moves
// through, the kinds of work it can be, and the errors the job service
// returns. It knows neither Temporal nor HTTP.
package job

// State is where a job is in its life. The vocabulary is that of Azure's and
// Google's long-running operations, so generic pollers understand it.
type State string

const (
	// StateScheduled means the job was accepted with a start time
	// (runAt/delaySeconds) that has not come yet; it becomes queued then.
	StateScheduled State = "scheduled"
	// StateQueued means the job is accepted and no worker has started it yet.
	StateQueued State = "queued"
	// StateRunning means a worker is on the job (possibly retrying it).
	StateRunning State = "running"
	// StateCanceling means cancellation was requested and the work is
	// cleaning up.
	StateCanceling State = "canceling"
	// StateSucceeded means the job is done and its result is readable.
	StateSucceeded State = "succeeded"
	// StateFailed means the job ended without a result; its error says why.
	StateFailed State = "failed"
	// StateCanceled means the job was stopped on request; no retry follows.
	StateCanceled State = "canceled"
)

// Terminal reports whether s is a final state: succeeded, failed or canceled.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCanceled:
		return true
	}
	return false
}
