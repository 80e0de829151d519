package engine

import (
	"context"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/internal/closeevent"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// waitClosed blocks until the workflow of job id closes and returns its
// close event (closeevent.Follow: Temporal's own long-polls on the
// workflow's history, which do not miss the close as a long-poll filtered
// to the close event can); it returns ctx's error when ctx ends first, or
// the failure of a long-poll. It is how the end of a job reaches
// long-polls, event streams and waiting submissions without polling. It
// calls changed each time events that change a job's status arrive before
// the close (statusEvent), so those who watch every change see it without
// waiting for the next look-up.
func (s *Service) waitClosed(ctx context.Context, id string, changed func()) (*historypb.HistoryEvent, error) {
	return closeevent.Follow(ctx, s.c.WorkflowService(), s.cfg.Namespace, id, func(events []*historypb.HistoryEvent) {
		for _, ev := range events {
			if statusEvent(ev.GetEventType()) {
				changed()
				return
			}
		}
	})
}

// statusEvent reports whether a history event of a running job's workflow
// changes what its status shows: the memo (a workflow kind's progress,
// steps and waitingFor, an external kind's progress), the JobState search
// attribute (running, canceling) and a cancellation request. The rest of
// a running job's status comes from its pending activity, which no event
// records while it runs; an activity's completion and the workflow tasks
// after it come just before the close, which the close waiter answers.
func statusEvent(t enumspb.EventType) bool {
	switch t {
	case enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
		enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
		return true
	}
	return false
}

// closedJob builds a finished job's status from last, its status as last
// known (as Submit or a look-up returned it), and its workflow's close
// event, as read does from Temporal's record, with no call to Temporal:
// the same view code applied to the close event and to the work's started
// and completed events, which the close event's result (the activity's
// output: the start and attempt of its last try) gives. The view goes to
// the finished-job cache. That is possible for a succeeded job of an
// activity kind with no webhook (whose delivery state is another
// workflow's) and no start delay (whose start time Temporal's record
// holds); ok is false otherwise, and the job is then read as any other.
func (s *Service) closedJob(last *job.Job, ev *historypb.HistoryEvent) (j *job.Job, ok bool) {
	attrs := ev.GetWorkflowExecutionCompletedEventAttributes()
	if attrs == nil || last == nil || last.Callback != nil || !last.ScheduledFor.IsZero() || !s.activityKind(last.Kind) {
		return nil, false
	}
	var out workflows.Output
	if converter.GetDefaultDataConverter().FromPayloads(attrs.GetResult(), &out) != nil || out.StartedAt.IsZero() {
		return nil, false // from a worker before the output said when
	}
	// What read takes from the job's memo and search attributes.
	j = &job.Job{ID: last.ID, Tenant: last.Tenant, Kind: last.Kind, Attempt: 1, CreatedAt: last.CreatedAt, UpdatedAt: last.CreatedAt,
		EstimatedCompletion: last.EstimatedCompletion, Fingerprint: last.Fingerprint, ParentID: last.ParentID,
		Priority: last.Priority, ScheduleID: last.ScheduleID, RerunOf: last.RerunOf}
	v := &view{job: j}
	started := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, EventTime: timestamppb.New(out.StartedAt),
		Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: int32(out.Attempt)}}}
	completed := &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventTime: ev.GetEventTime(),
		Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: attrs.GetResult()}}}
	for _, e := range []*historypb.HistoryEvent{started, completed, ev} {
		if v.apply(e, true) != nil {
			return nil, false
		}
	}
	v.closed(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED)
	v.closedAt(ev.GetEventTime(), s.cfg.ResultTTL)
	if !s.cfg.Now().Before(j.ExpiresAt) {
		return nil, false // answered as expired by a read
	}
	s.finished.put(j.Tenant, j.ID, v.forCache())
	return j, true
}

// activityKind reports whether kind is one of this service's kinds that
// runs as one activity of the Job workflow (not a workflow kind, not an
// external one).
func (s *Service) activityKind(kind string) bool {
	if s.kinds == nil {
		return false
	}
	k, ok := s.kinds.Lookup(kind)
	if !ok || k.IsWorkflow() {
		return false
	}
	_, ext := external.Of(k)
	return !ext
}
