package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/jobgate/jobgate/job"
)

// Two API and two worker processes share one Temporal server: a job
// submitted through one API is read through the other, and when the worker
// running it is killed, the other worker finishes it.
func TestScaleOutSurvivesAWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	queue := "scale-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	workers := map[int]*exec.Cmd{}
	for range 2 {
		cmd, _ := startRoleProcess(t, "worker", freeLoopbackPort(t), queue)
		workers[cmd.Process.Pid] = cmd
	}
	var apis []*env
	for range 2 {
		port := freeLoopbackPort(t)
		startRoleProcess(t, "api", port, queue)
		apis = append(apis, processEnv(t, port))
	}
	temporal := mustStartEnv(t, envOptions{noWorker: true}).Temporal

	id, _ := apis[0].submit(`{"kind":"sleep","input":{"seconds":8}}`)
	apis[1].waitState(id, job.StateRunning, 15*time.Second)

	// Which worker runs it? Its identity starts with its pid.
	desc, err := temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	require.Len(t, desc.GetPendingActivities(), 1)
	identity := desc.GetPendingActivities()[0].GetLastWorkerIdentity()
	pid, err := strconv.Atoi(strings.SplitN(identity, "@", 2)[0])
	require.NoError(t, err, identity)
	victim, ok := workers[pid]
	require.True(t, ok, "identity %s is one of our workers", identity)
	require.NoError(t, victim.Process.Signal(syscall.SIGKILL))

	// The heartbeat timeout (10 s) hands the work to the other worker.
	done := apis[1].waitState(id, job.StateSucceeded, 90*time.Second).JSON(t)
	require.EqualValues(t, 2, done["attempt"], "the second attempt, on the surviving worker")
	var finisher string
	it := temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			finisher = ev.GetActivityTaskStartedEventAttributes().GetIdentity()
		}
	}
	require.NotEqual(t, identity, finisher)
	require.Contains(t, apis[0].do(http.MethodGet, "/v1/jobs/"+id+"/result", "").JSON(t), "slept")
}
