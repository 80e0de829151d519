package main

import (
	"context"
	"errors"
	"testing"
	"time"

	commandpb "go.temporal.io/api/command/v1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
)

func TestCompletionsNoteTheWorkersClosingCall(t *testing.T) {
	cs := newCompletions()
	read := map[string]bool{"closed": true}
	cs.read = func(_ context.Context, id string) bool { return read[id] }
	call := func(req, reply any, err error) {
		t.Helper()
		invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return err }
		if got := cs.intercept(context.Background(), "/m", req, reply, nil, invoker); !errors.Is(got, err) {
			t.Fatalf("intercept returned %v, want the call's %v", got, err)
		}
	}
	poll := func(token, id string) {
		call(&workflowservice.PollWorkflowTaskQueueRequest{}, &workflowservice.PollWorkflowTaskQueueResponse{
			TaskToken: []byte(token), WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id}}, nil)
	}
	respond := func(token string, kind enumspb.CommandType, err error) {
		call(&workflowservice.RespondWorkflowTaskCompletedRequest{TaskToken: []byte(token), Commands: []*commandpb.Command{{CommandType: kind}}},
			&workflowservice.RespondWorkflowTaskCompletedResponse{}, err)
	}
	before := time.Now()
	poll("t1", "closed")
	respond("t1", enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION, nil)
	poll("t2", "scheduled")
	respond("t2", enumspb.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, nil)
	poll("t3", "refused")
	respond("t3", enumspb.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION, errors.New("task not found"))
	cs.note("closed", before)
	cs.note("scheduled", before)
	cs.note("refused", before)
	got, gotRead := cs.drain()
	if got.N != 1 || got.Latencies[0] < 0 || got.Latencies[0] > time.Since(before) {
		t.Fatalf("drain = %d figures %v, want one: the closing call that succeeded, returned after %v", got.N, got.Latencies, before)
	}
	if gotRead.N != 1 || gotRead.Latencies[0] < got.Latencies[0] {
		t.Fatalf("reads after the closing calls: %v, want one, after the call's %v", gotRead.Latencies, got.Latencies[0])
	}
	if len(cs.byToken) != 0 {
		t.Fatalf("tokens still held after their calls: %v", cs.byToken)
	}
	if again, _ := cs.drain(); again.N != 0 {
		t.Fatalf("a second drain returned %d figures", again.N)
	}
}
