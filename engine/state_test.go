package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/jobgate/jobgate/job"
)

func TestJobState(t *testing.T) {
	t.Parallel()
	const running = enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	started := &workflowpb.PendingActivityInfo{State: enumspb.PENDING_ACTIVITY_STATE_STARTED, Attempt: 1}
	scheduled := &workflowpb.PendingActivityInfo{State: enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, Attempt: 1}
	retrying := &workflowpb.PendingActivityInfo{State: enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, Attempt: 3}
	cancelReq := &workflowpb.PendingActivityInfo{State: enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED, Attempt: 1}
	cases := []struct {
		name      string
		status    enumspb.WorkflowExecutionStatus
		recorded  string
		activity  *workflowpb.PendingActivityInfo
		cancelReq bool
		want      job.State
	}{
		{"completed", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "succeeded", nil, false, job.StateSucceeded},
		{"failed", enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "failed", nil, false, job.StateFailed},
		{"timed out", enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, "running", nil, false, job.StateFailed},
		{"canceled", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "canceled", nil, true, job.StateCanceled},
		{"terminated by an operator", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "running", nil, false, job.StateCanceled},
		{"not run yet", running, "", nil, false, job.StateQueued},
		{"recorded queued", running, "queued", nil, false, job.StateQueued},
		{"waiting for its start time", running, "scheduled", nil, false, job.StateScheduled},
		{"canceled before its start time", running, "scheduled", nil, true, job.StateCanceling},
		{"work waiting for a worker", running, "running", scheduled, false, job.StateQueued},
		{"work started", running, "running", started, false, job.StateRunning},
		{"work retrying", running, "running", retrying, false, job.StateRunning},
		{"between attempts, listing", running, "running", nil, false, job.StateRunning},
		{"closing after success", running, "succeeded", nil, false, job.StateRunning},
		{"closing after failure", running, "failed", nil, false, job.StateRunning},
		{"cancel requested while queued", running, "", nil, true, job.StateCanceling},
		{"cancel reaching the work", running, "running", cancelReq, false, job.StateCanceling},
		{"canceling, listing", running, "canceling", nil, false, job.StateCanceling},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, jobState(tc.status, tc.recorded, tc.activity, tc.cancelReq))
		})
	}
}
