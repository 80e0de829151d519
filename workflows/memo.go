package workflows

import (
	"time"

	"github.com/jobgate/jobgate/job"
)

// Memo fields of a job's workflow. Describe returns them whether or not a
// worker runs, so a job's status is read from them.
const (
	// MemoJob holds a JobMemo: what was known when the job was accepted.
	// One field rather than one per value: each field is a payload of its
	// own, written to the start event, the mutable state and the
	// visibility record (one field measured ~3% more starts per second
	// than five).
	MemoJob = "job"
	// MemoProgress holds the job's last progress (a job.Progress as JSON:
	// {"current", "total", "message"}), published by workflow kinds and
	// external kinds; activity kinds report it through heartbeats.
	MemoProgress = "progress"
	// MemoWaitingFor holds the inputs the job waits for: a list of input
	// names (the convention external workers follow) or of WaitingMemo.
	MemoWaitingFor = "waitingFor"
	// MemoSteps holds a workflow kind's steps: a list of StepMemo.
	MemoSteps = "steps"
	// MemoStartedAt holds when a workflow kind's job started running.
	MemoStartedAt = "startedAt"
)

// JobMemo is the value of MemoJob.
type JobMemo struct {
	Tenant         string    `json:"tenant"`
	CreatedAt      time.Time `json:"createdAt"`
	ExpectedMillis int64     `json:"expectedMillis"`
	// RequestID is the X-Request-Id of the submission.
	RequestID string `json:"requestId,omitempty"`
	// Callback is true for a job submitted with a callbackUrl.
	Callback bool `json:"callback,omitempty"`
	// Fingerprint is set for a job submitted with an Idempotency-Key.
	Fingerprint string `json:"fingerprint,omitempty"`
	// ParentID is the job that started this one as a child job.
	ParentID string `json:"parentId,omitempty"`
	// Priority is the job's dispatch priority, 1 to 5; 0 (jobs accepted
	// before priorities) reads as 3.
	Priority int `json:"priority,omitempty"`
	// RerunOf is the job this one reruns.
	RerunOf string `json:"rerunOf,omitempty"`
	// ScheduleID is the schedule (its id in jobgate) whose run this job
	// is; such a memo is the schedule's, the same for every run, so it has
	// no CreatedAt (the run's start time is its creation).
	ScheduleID string `json:"scheduleId,omitempty"`
	// Workflow is true for a job of a workflow kind (or an external one):
	// its progress, steps and waits are read from the other memo fields,
	// not from a pending activity.
	Workflow bool `json:"workflow,omitempty"`
}

// WaitingMemo is one input a job waits for, as workflow kinds publish it.
type WaitingMemo struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since,omitzero"`
}

// StepMemo is one step of a workflow kind, as it publishes it.
type StepMemo struct {
	Name        string    `json:"name"`
	State       job.State `json:"state"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// JobID is set for a step that is a child job.
	JobID string `json:"jobId,omitempty"`
	// Error says why a failed step failed.
	Error string `json:"error,omitempty"`
}
