package engine

import (
	"cmp"
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// waitClosed blocks until the workflow of job id closes, with Temporal's
// own long-poll of its history filtered to the close event, and returns
// that event; it returns ctx's error when ctx ends first, or the failure
// of the long-poll. It is how the end of a job reaches long-polls, event
// streams and waiting submissions without polling.
func (s *Service) waitClosed(ctx context.Context, id string) (*historypb.HistoryEvent, error) {
	it := s.c.GetWorkflowHistory(ctx, id, "", true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		if ev != nil {
			return ev, nil
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("job %s: its history ended without a close event", id)
}

// closedJob builds a finished job's status from last, its status as last
// known (as Submit or a look-up returned it), and its workflow's close
// event, exactly as a read of Temporal's record would (read and
// finishedView), with no call to Temporal; the view goes to the
// finished-job cache. That is possible for a succeeded job of an
// activity kind, whose work recorded the start and attempt of its last
// try (and the start of its first, the job's startedAt) in its output,
// with no webhook (whose delivery state is another workflow's) and no start delay (whose start time Temporal's record
// holds). ok is false otherwise: the job is then read as any other.
func (s *Service) closedJob(last *job.Job, ev *historypb.HistoryEvent) (j *job.Job, ok bool) {
	attrs := ev.GetWorkflowExecutionCompletedEventAttributes()
	if attrs == nil || last == nil || last.Callback != nil || !last.ScheduledFor.IsZero() || !s.activityKind(last.Kind) {
		return nil, false
	}
	var out workflows.Output
	if converter.GetDefaultDataConverter().FromPayloads(attrs.GetResult(), &out) != nil || out.StartedAt.IsZero() {
		return nil, false
	}
	completed := recordTime(ev.GetEventTime())
	j = &job.Job{
		ID:                  last.ID,
		Tenant:              last.Tenant,
		Kind:                last.Kind,
		State:               job.StateSucceeded,
		Progress:            out.Progress,
		Attempt:             max(out.Attempt, 1),
		CreatedAt:           last.CreatedAt,
		StartedAt:           cmp.Or(out.FirstStartedAt, out.StartedAt),
		UpdatedAt:           completed,
		CompletedAt:         completed,
		ExpiresAt:           completed.Add(s.cfg.ResultTTL),
		EstimatedCompletion: last.EstimatedCompletion,
		Fingerprint:         last.Fingerprint,
		ParentID:            last.ParentID,
		Priority:            last.Priority,
		ScheduleID:          last.ScheduleID,
		RerunOf:             last.RerunOf,
	}
	if !s.cfg.Now().Before(j.ExpiresAt) {
		return nil, false // answered as expired by a read
	}
	s.finished.put(j.ID, (&view{job: j, result: out.Result, blob: out.Blob}).forCache())
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
