// Package closeevent waits for a workflow's close without missing it.
//
// Temporal's history long-poll filtered to the close event (what the SDK's
// WorkflowRun.Get and GetWorkflowHistory use) can sleep through the close
// it waits for. The server wakes a waiting long-poll through a channel of
// one slot that it fills without blocking (service/history/events,
// NotifierImpl.dispatchHistoryEventNotification in v1.32): when the
// workflow's close follows another of its events within a moment, before
// the long-poll has taken that event from the slot, the close's wake-up is
// dropped, the long-poll sees the earlier event (still running) and waits
// out its 20 seconds. Measured on the embedded server, with one-second
// activity jobs four at a time: 2 of 120 close-event long-polls answered
// 19 s after the close, the SDK's and jobgate's alike.
//
// Wait follows the history instead. It takes the position of the
// history's end with one close-event request that the server answers at
// once (its deadline leaves the server no time to wait: the server keeps
// a second of a long-poll's deadline for its answer), then long-polls for
// the events after that position, a batch at a time, until a batch holds
// the close. Every request reads the workflow's state before it waits,
// so a wake-up dropped between two requests is not lost: the next request
// finds the events. What remains (a stale wake-up in the slot as the
// request begins to wait, and the next one dropped) is bounded by each
// request's own deadline.
package closeevent

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/proto"
)

const (
	// positionDeadline is the deadline of the request for the history's
	// end: no more than the second the server keeps for its answer, so it
	// answers at once. A server that waited anyway would answer the close
	// or exceed the deadline, and Wait asks again: a poll every second.
	positionDeadline = time.Second
	// followDeadline bounds each long-poll for the next events: the server
	// answers a second before it (no new events, the same position) when
	// nothing happened, and Wait asks again.
	followDeadline = 11 * time.Second
)

// Wait blocks until the workflow with ID workflowID (its current run when
// Wait begins) closes, and returns its close event: completed, failed,
// timed out, canceled, terminated or continued as new. It returns ctx's
// error when ctx ends first, and Temporal's error (NotFound for a
// workflow that does not exist) when a request fails otherwise.
func Wait(ctx context.Context, ws workflowservice.WorkflowServiceClient, namespace, workflowID string) (*historypb.HistoryEvent, error) {
	return Follow(ctx, ws, namespace, workflowID, nil)
}

// Follow is Wait, and calls onEvents (when not nil) with each batch of the
// workflow's events that reaches it before the close, in order: from the
// position Follow took at its start, every change to the workflow's
// history (a step's end, a memo or search attribute written, an input
// taken) as the server records it. onEvents runs on Follow's goroutine;
// Follow waits for it.
func Follow(ctx context.Context, ws workflowservice.WorkflowServiceClient, namespace, workflowID string, onEvents func([]*historypb.HistoryEvent)) (*historypb.HistoryEvent, error) {
	req := &workflowservice.GetWorkflowExecutionHistoryRequest{
		Namespace:              namespace,
		Execution:              &commonpb.WorkflowExecution{WorkflowId: workflowID},
		WaitNewEvent:           true,
		HistoryEventFilterType: enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
		SkipArchival:           true,
	}
	for {
		resp, waited, err := ask(ctx, ws, req, positionDeadline)
		switch {
		case err != nil:
			return nil, err
		case waited:
			continue
		}
		events, err := eventsOf(resp)
		if err != nil {
			return nil, err
		}
		if ev := closeIn(events); ev != nil {
			return ev, nil
		}
		if len(resp.GetNextPageToken()) == 0 {
			return nil, fmt.Errorf("workflow %s: its history has no close event and no position to follow", workflowID)
		}
		req.NextPageToken = resp.GetNextPageToken()
		break
	}
	// The token holds the run and the position; with all events asked for,
	// the server answers as soon as any follow it.
	req.HistoryEventFilterType = enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT
	for {
		resp, waited, err := ask(ctx, ws, req, followDeadline)
		switch {
		case err != nil:
			return nil, err
		case waited:
			continue
		}
		events, err := eventsOf(resp)
		if err != nil {
			return nil, err
		}
		if ev := closeIn(events); ev != nil {
			return ev, nil
		}
		if onEvents != nil && len(events) > 0 {
			onEvents(events)
		}
		if len(resp.GetNextPageToken()) == 0 {
			return nil, fmt.Errorf("workflow %s: its history ended without a close event", workflowID)
		}
		req.NextPageToken = resp.GetNextPageToken()
	}
}

// ask sends req with the given deadline. waited reports that the deadline
// passed (the server waited longer than asked): the caller asks again.
func ask(ctx context.Context, ws workflowservice.WorkflowServiceClient, req *workflowservice.GetWorkflowExecutionHistoryRequest, deadline time.Duration) (_ *workflowservice.GetWorkflowExecutionHistoryResponse, waited bool, _ error) {
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	resp, err := ws.GetWorkflowExecutionHistory(cctx, req)
	switch {
	case err == nil:
		return resp, false, nil
	case ctx.Err() != nil:
		return nil, false, ctx.Err()
	case cctx.Err() != nil:
		return nil, true, nil
	}
	return nil, false, err
}

// eventsOf is the response's events, decoded when the server sent them
// raw (one blob per batch).
func eventsOf(resp *workflowservice.GetWorkflowExecutionHistoryResponse) ([]*historypb.HistoryEvent, error) {
	if len(resp.GetRawHistory()) == 0 {
		return resp.GetHistory().GetEvents(), nil
	}
	var events []*historypb.HistoryEvent
	for _, blob := range resp.GetRawHistory() {
		if blob.GetEncodingType() != enumspb.ENCODING_TYPE_PROTO3 {
			return nil, fmt.Errorf("history batch in encoding %s, not proto3", blob.GetEncodingType())
		}
		var h historypb.History
		if err := proto.Unmarshal(blob.GetData(), &h); err != nil {
			return nil, errors.Join(errors.New("decode a history batch"), err)
		}
		events = append(events, h.GetEvents()...)
	}
	return events, nil
}

// closeIn is the close event among events, nil if there is none.
func closeIn(events []*historypb.HistoryEvent) *historypb.HistoryEvent {
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			return ev
		}
	}
	return nil
}
