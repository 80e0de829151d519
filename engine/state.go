package engine

import (
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/jobgate/jobgate/job"
)

// jobState maps Temporal's record of a job's workflow onto the job's state.
// It is the only such mapping: status, listings and finished jobs all use
// it. recorded is the JobState search attribute the workflow keeps ("" if
// it has not run yet); activity is the pending activity when known (nil
// when there is none, or in a listing, which cannot know).
func jobState(status enumspb.WorkflowExecutionStatus, recorded string, activity *workflowpb.PendingActivityInfo, cancelRequested bool) job.State {
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return job.StateSucceeded
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return job.StateFailed
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return job.StateCanceled
	}
	switch {
	case cancelRequested || recorded == string(job.StateCanceling) ||
		activity.GetState() == enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED:
		return job.StateCanceling
	case activity != nil && (activity.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED || activity.GetAttempt() > 1):
		return job.StateRunning
	case activity != nil:
		// Scheduled, waiting for a worker to pick the work up.
		return job.StateQueued
	case recorded == string(job.StateScheduled):
		// Accepted with a start delay and not run yet; the caller, which
		// knows the start time, tells a job still waiting for it from one
		// whose time has come (queued: see untilStart).
		return job.StateScheduled
	case recorded == "" || recorded == string(job.StateQueued):
		return job.StateQueued
	}
	// The workflow has run and has no work pending: between attempts, or
	// closing after its work ended (even with a final state recorded).
	return job.StateRunning
}
