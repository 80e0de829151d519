package main

import (
	"context"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
)

// completions learns, through a gRPC interceptor on the raw worker's
// client, when the worker's call that closes a workflow (its last
// RespondWorkflowTaskCompleted) returned: the earliest moment a process
// running the worker knows the workflow has closed, which the sync phase
// sets beside the history long-poll's delivery of the same close. With
// read set, it then reads the workflow's close event (no long-poll), as a
// waiter in the worker's process would have to for the close time, and
// learns when that read returned.
type completions struct {
	// read, when set, reads workflow id's close event and reports whether
	// it got one.
	read func(ctx context.Context, id string) bool

	mu      sync.Mutex
	byToken map[string]string   // workflow task token → workflow ID
	closed  map[string]*closing // workflow ID → its closing call
	// worker and readBack are the times from closes to their closing
	// calls' returns and to the returns of the reads after them that
	// note recorded.
	worker, readBack []time.Duration
}

// closing is a workflow's closing call as the interceptor saw it.
type closing struct {
	returned time.Time
	read     chan time.Time // when the read after it returned; zero if it failed
}

func newCompletions() *completions {
	return &completions{byToken: map[string]string{}, closed: map[string]*closing{}}
}

// intercept is the unary client interceptor.
func (cs *completions) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	returned := time.Now()
	if rq, ok := req.(*workflowservice.RespondWorkflowTaskCompletedRequest); ok {
		// The task is done with, whether the call took it or not.
		cs.mu.Lock()
		defer cs.mu.Unlock()
		id, known := cs.byToken[string(rq.GetTaskToken())]
		delete(cs.byToken, string(rq.GetTaskToken()))
		if known && err == nil && closes(rq) {
			c := &closing{returned: returned, read: make(chan time.Time, 1)}
			cs.closed[id] = c
			if cs.read != nil {
				go func() {
					rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					var at time.Time
					if cs.read(rctx, id) {
						at = time.Now()
					}
					c.read <- at
				}()
			}
		}
		return err
	}
	if r, ok := reply.(*workflowservice.PollWorkflowTaskQueueResponse); ok && err == nil && len(r.GetTaskToken()) > 0 {
		cs.mu.Lock()
		cs.byToken[string(r.GetTaskToken())] = r.GetWorkflowExecution().GetWorkflowId()
		cs.mu.Unlock()
	}
	return err
}

// closes reports whether a workflow task's completion closes its workflow.
func closes(rq *workflowservice.RespondWorkflowTaskCompletedRequest) bool {
	for _, c := range rq.GetCommands() {
		switch c.GetCommandType() {
		case enumspb.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION, enumspb.COMMAND_TYPE_FAIL_WORKFLOW_EXECUTION,
			enumspb.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION, enumspb.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION:
			return true
		}
	}
	return false
}

// readCloseEvent returns a read for completions.read: one request for the
// workflow's close event that does not wait for it.
func readCloseEvent(svc workflowservice.WorkflowServiceClient, namespace string) func(ctx context.Context, id string) bool {
	return func(ctx context.Context, id string) bool {
		resp, err := svc.GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace: namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: id},
			HistoryEventFilterType: enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
		})
		return err == nil && len(resp.GetHistory().GetEvents()) > 0
	}
}

// note records the times from workflow id's close to the return of the
// worker's closing call and of the read after it, when the worker closed
// it through a polled task; it waits for that read.
func (cs *completions) note(id string, closeTime time.Time) {
	cs.mu.Lock()
	c, ok := cs.closed[id]
	delete(cs.closed, id)
	cs.mu.Unlock()
	if !ok {
		return
	}
	var read time.Time
	if cs.read != nil {
		read = <-c.read
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.worker = append(cs.worker, c.returned.Sub(closeTime))
	if !read.IsZero() {
		cs.readBack = append(cs.readBack, read.Sub(closeTime))
	}
}

// drain returns what note recorded since the last drain (the closing
// calls, the reads after them) and forgets the closes nobody noted.
func (cs *completions) drain() (worker, read stats) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	worker, read = newStats(cs.worker, 0, 0, nil), newStats(cs.readBack, 0, 0, nil)
	cs.worker, cs.readBack, cs.closed = nil, nil, map[string]*closing{}
	return worker, read
}
