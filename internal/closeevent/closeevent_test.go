package closeevent

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/proto"
)

// Every way a run ends is a close; nothing else is. (Wait itself runs
// against a real server in e2e: TestEveryCloseReachesItsWaiter and the
// other waiting-submission, long-poll and external-kind tests.)
func TestCloseIn(t *testing.T) {
	closes := map[enumspb.EventType]bool{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:        true,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:           true,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:        true,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:         true,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:       true,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: true,
	}
	for v := range enumspb.EventType_name {
		typ := enumspb.EventType(v)
		batch := []*historypb.HistoryEvent{{EventId: 7, EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}, {EventId: 8, EventType: typ}}
		got := closeIn(batch)
		if closes[typ] != (got != nil) || (got != nil && got.GetEventId() != 8) {
			t.Errorf("%s: closeIn gave %v", typ, got)
		}
	}
}

func TestEventsOfRawHistory(t *testing.T) {
	batch := func(ids ...int64) *commonpb.DataBlob {
		h := &historypb.History{}
		for _, id := range ids {
			h.Events = append(h.Events, &historypb.HistoryEvent{EventId: id})
		}
		b, err := proto.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return &commonpb.DataBlob{EncodingType: enumspb.ENCODING_TYPE_PROTO3, Data: b}
	}
	events, err := eventsOf(&workflowservice.GetWorkflowExecutionHistoryResponse{RawHistory: []*commonpb.DataBlob{batch(5, 6), batch(7)}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, ev := range events {
		ids = append(ids, ev.GetEventId())
	}
	if len(ids) != 3 || ids[0] != 5 || ids[2] != 7 {
		t.Errorf("events %v, want 5 6 7", ids)
	}
	if _, err := eventsOf(&workflowservice.GetWorkflowExecutionHistoryResponse{RawHistory: []*commonpb.DataBlob{{EncodingType: enumspb.ENCODING_TYPE_JSON, Data: []byte("{}")}}}); err == nil {
		t.Error("a batch that is not proto3 decoded")
	}
	plain := &workflowservice.GetWorkflowExecutionHistoryResponse{History: &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 9}}}}
	if events, err := eventsOf(plain); err != nil || len(events) != 1 || events[0].GetEventId() != 9 {
		t.Errorf("plain history: %v, %v", events, err)
	}
}
