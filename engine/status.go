package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// view is what the service knows of a job: its status and, once it
// succeeded, its result, inline or in blob storage. Its job's Callback is
// only a placeholder; withCallback fills it.
type view struct {
	job    *job.Job
	result json.RawMessage
	blob   *workflows.BlobRef
	// terminated is true for a job an operator terminated: its workflow
	// sent no webhook.
	terminated bool
	// external is true for a job of an external kind, whose workflow's
	// result is the job's result as it is (not a workflows.Output).
	external bool
	// resultInHistory is true when the inline result was left out of this
	// (cached) view for its size: read it with historyResult.
	resultInHistory bool

	// finalCallback, once set, is the callback's final state.
	mu            sync.Mutex
	finalCallback *job.Callback
}

// load reads a job from Temporal's record of its workflow. A finished job
// is read once, from its history, and then served from memory until it
// expires.
func (s *Service) load(ctx context.Context, tenant, id string) (*view, error) {
	v, err := s.read(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if exp := v.job.ExpiresAt; !exp.IsZero() && !s.cfg.Now().Before(exp) {
		return nil, job.ErrExpired
	}
	return v, nil
}

func (s *Service) read(ctx context.Context, tenant, id string) (*view, error) {
	// Another tenant's job answers exactly as an id that names no job,
	// after the same work: the cache holds each tenant's own jobs only, so
	// both cost one look-up in Temporal, and a schedule's run, whose id
	// names its tenant, costs none for another tenant whether or not it
	// exists.
	if !jobID(id) || !ownedRunID(tenant, id) {
		return nil, job.ErrNotFound
	}
	if v, ok := s.finished.get(tenant, id); ok {
		return v, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	desc, err := s.c.DescribeWorkflowExecution(cctx, id, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return nil, job.ErrNotFound
	case err != nil:
		return nil, translate("describe job", err)
	}
	info := desc.GetWorkflowExecutionInfo()
	// A job is a Job workflow, or an external kind's workflow: one jobgate
	// started, whose memo says for whom.
	ext := info.GetType().GetName() != workflows.JobWorkflowName
	j, flow, err := jobFromMemo(id, info.GetMemo())
	if err != nil && ext {
		return nil, job.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if j.Tenant != tenant {
		return nil, job.ErrNotFound
	}
	createdAtStart(j, recordTime(info.GetStartTime()))
	j.UpdatedAt = j.CreatedAt
	j.Kind, _ = searchKeyword(info.GetSearchAttributes(), workflows.KindKey.GetName())
	// Last, on whichever path returns: the state and estimate of a job
	// with a start delay depend on its start time.
	defer untilStart(j, recordTime(info.GetStartTime()), recordTime(info.GetExecutionTime()), s.cfg.Now())

	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		if ext {
			externalRunning(j, desc)
		} else if flow {
			recorded, _ := searchKeyword(info.GetSearchAttributes(), workflows.StateKey.GetName())
			j.State = jobState(info.GetStatus(), recorded, nil, desc.GetWorkflowExtendedInfo().GetCancelRequested())
			applyWorkflowMemo(j, info.GetMemo(), desc.GetPendingActivities())
		} else if runningState(j, desc) {
			// The work has ended and the workflow is closing: what its
			// pending activity showed is in the history now, and a status
			// never loses what it showed.
			if err := s.endedWork(cctx, j, info.GetExecution().GetRunId()); err != nil {
				return nil, err
			}
		}
		return &view{job: j}, nil
	}
	v, err := s.finishedView(cctx, j, info.GetExecution().GetRunId(), info.GetStatus(), ext, !ext && !flow)
	if err != nil {
		return nil, err
	}
	if flow {
		// The history's activities are the steps'; the job's own start
		// and progress are in the memo.
		if !ext {
			j.StartedAt, j.Attempt = time.Time{}, 1
		}
		applyWorkflowMemo(j, info.GetMemo(), nil)
		j.WaitingFor = nil
	}
	v.closedAt(info.GetCloseTime(), s.cfg.ResultTTL)
	s.finished.put(tenant, id, v.forCache())
	return v, nil
}

// maxCachedResult is the largest inline result the finished-job cache
// keeps; a larger one is read from the history again when asked for, so the
// cache's memory stays bounded (entries × this).
const maxCachedResult = 16 << 10

// forCache returns the view to keep in the finished-job cache: v itself,
// or a copy without its inline result when that is large.
func (v *view) forCache() *view {
	if len(v.result) <= maxCachedResult {
		return v
	}
	return &view{job: v.job, blob: v.blob, terminated: v.terminated, external: v.external, resultInHistory: true}
}

// historyResult reads a succeeded job's inline result from its history.
func (s *Service) historyResult(ctx context.Context, id string, ext bool) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	it := s.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, translate("read job result", err)
		}
		if attrs := ev.GetWorkflowExecutionCompletedEventAttributes(); attrs != nil {
			if ext {
				return externalResult(attrs.GetResult())
			}
			var out workflows.Output
			if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetResult(), &out); err != nil {
				return nil, fmt.Errorf("job %s: decode result: %w", id, err)
			}
			return out.Result, nil
		}
	}
	return nil, fmt.Errorf("job %s: no completion event in its history", id)
}

// jobFromMemo reads what the API stored with the workflow at start, and
// whether the job is of a workflow (or external) kind, whose status is in
// the other memo fields.
func jobFromMemo(id string, memo *commonpb.Memo) (j *job.Job, workflow bool, err error) {
	var m workflows.JobMemo
	p, ok := memo.GetFields()[workflows.MemoJob]
	if !ok {
		return nil, false, fmt.Errorf("job %s: workflow memo lacks %q; was it started by jobgate?", id, workflows.MemoJob)
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, &m); err != nil {
		return nil, false, fmt.Errorf("job %s: decode memo %q: %w", id, workflows.MemoJob, err)
	}
	j = &job.Job{ID: id, Attempt: 1, Tenant: m.Tenant, Fingerprint: m.Fingerprint, CreatedAt: m.CreatedAt, ParentID: m.ParentID,
		EstimatedCompletion: m.CreatedAt.Add(time.Duration(m.ExpectedMillis) * time.Millisecond),
		Priority:            m.Priority, RerunOf: m.RerunOf, ScheduleID: m.ScheduleID}
	if m.Callback {
		j.Callback = &job.Callback{State: job.CallbackPending}
	}
	return j, m.Workflow, nil
}

// runningState fills a running workflow's state, attempt, retry, start
// and progress from its pending activity, which Temporal keeps whether or
// not a worker is up, also while the work waits to retry. It reports
// whether the work has ended and the workflow is closing (it has run, and
// has no pending activity): the status is then in the history.
func runningState(j *job.Job, desc *workflowservice.DescribeWorkflowExecutionResponse) (ended bool) {
	recorded, _ := searchKeyword(desc.GetWorkflowExecutionInfo().GetSearchAttributes(), workflows.StateKey.GetName())
	var activity *workflowpb.PendingActivityInfo
	for _, pa := range desc.GetPendingActivities() {
		activity = pa
		pendingWork(j, pa)
	}
	j.State = jobState(desc.GetWorkflowExecutionInfo().GetStatus(), recorded, activity, desc.GetWorkflowExtendedInfo().GetCancelRequested())
	switch job.State(recorded) {
	case "", job.StateScheduled, job.StateQueued:
		return false
	}
	return activity == nil
}

// pendingWork fills j from its work's pending activity: the attempt, the
// first attempt's start (from the heartbeats, which carry it from attempt
// to attempt, or the current attempt's own), the last progress and, once
// an attempt failed, the retry.
func pendingWork(j *job.Job, pa *workflowpb.PendingActivityInfo) {
	j.Attempt = int(max(pa.GetAttempt(), 1))
	var report workflows.WorkReport
	if details := pa.GetHeartbeatDetails(); len(details.GetPayloads()) > 0 {
		var p *job.Progress
		if converter.GetDefaultDataConverter().FromPayloads(details, &p, &report) == nil && p != nil {
			j.Progress = p
		}
	}
	if t := pa.GetLastStartedTime(); t != nil {
		j.StartedAt = t.AsTime()
		j.UpdatedAt = laterOf(j.UpdatedAt, j.StartedAt)
	}
	if !report.FirstStartedAt.IsZero() {
		j.StartedAt = report.FirstStartedAt
		j.UpdatedAt = laterOf(j.UpdatedAt, j.StartedAt)
	}
	if t := pa.GetLastHeartbeatTime(); t != nil {
		j.UpdatedAt = laterOf(j.UpdatedAt, t.AsTime())
	}
	if f := pa.GetLastFailure(); f != nil && j.Attempt > 1 {
		r := &job.Retry{LastError: attemptFailure(f), MaxAttempts: int(pa.GetMaximumAttempts())}
		if t := pa.GetLastAttemptCompleteTime(); t != nil {
			r.LastAttemptAt = t.AsTime()
			j.UpdatedAt = laterOf(j.UpdatedAt, r.LastAttemptAt)
		}
		if t := pa.GetNextAttemptScheduleTime(); t != nil && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
			r.NextAttemptAt = t.AsTime()
		}
		j.Retry = r
	}
}

// attemptFailure is a failed attempt's error in words fit for the client,
// as the job's own error would be (see workflows.jobFailure): the work's
// message and type, a timeout named as one, anything else unnamed.
func attemptFailure(f *failurepb.Failure) job.Failure {
	switch {
	case f.GetApplicationFailureInfo() != nil:
		typ := f.GetApplicationFailureInfo().GetType()
		if typ == "" {
			typ = "failed"
		}
		return job.Failure{Type: typ, Message: f.GetMessage()}
	case f.GetTimeoutFailureInfo() != nil:
		return job.Failure{Type: "timeout", Message: "the job's work timed out (" + f.GetTimeoutFailureInfo().GetTimeoutType().String() + ")"}
	}
	return job.Failure{Type: "failed", Message: "the job's work failed"}
}

// endedWork fills a closing job's attempt, start, progress and last
// change from its history, where its ended activity is.
func (s *Service) endedWork(ctx context.Context, j *job.Job, runID string) error {
	it := s.c.GetWorkflowHistory(ctx, j.ID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return translate("read job history", err)
		}
		if workEvent(j, ev) {
			j.UpdatedAt = laterOf(j.UpdatedAt, ev.GetEventTime().AsTime())
		}
	}
	return nil
}

// workEvent applies an event of a job's work (its activity) to j: the
// start and attempt of its last attempt, then, as the activity ended, the
// first attempt's start and the last progress it reported. It reports
// whether ev was such an event.
func workEvent(j *job.Job, ev *historypb.HistoryEvent) bool {
	dc := converter.GetDefaultDataConverter()
	var report workflows.WorkReport
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		j.StartedAt = ev.GetEventTime().AsTime()
		j.Attempt = int(max(ev.GetActivityTaskStartedEventAttributes().GetAttempt(), 1))
		return true
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		var out workflows.Output
		if dc.FromPayloads(ev.GetActivityTaskCompletedEventAttributes().GetResult(), &out) == nil {
			report = workflows.WorkReport{FirstStartedAt: out.FirstStartedAt, Progress: out.Progress}
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		if d := ev.GetActivityTaskFailedEventAttributes().GetFailure().GetApplicationFailureInfo().GetDetails(); d != nil {
			// Details of the errors jobgate's runner makes; a kind's own
			// ApplicationError has its own, or none.
			if dc.FromPayloads(d, &report) != nil {
				report = workflows.WorkReport{}
			}
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		if d := ev.GetActivityTaskTimedOutEventAttributes().GetFailure().GetTimeoutFailureInfo().GetLastHeartbeatDetails(); d != nil {
			var p *job.Progress
			if dc.FromPayloads(d, &p, &report) == nil {
				report.Progress = p
			}
		}
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
		if d := ev.GetActivityTaskCanceledEventAttributes().GetDetails(); d != nil && dc.FromPayloads(d, &report) != nil {
			report = workflows.WorkReport{}
		}
	default:
		return false
	}
	if !report.FirstStartedAt.IsZero() {
		j.StartedAt = report.FirstStartedAt
	}
	if report.Progress != nil {
		j.Progress = report.Progress
	}
	return true
}

// finishedView reads a closed workflow's history for the job's outcome, the
// start and attempt of its last try, and its result.
// work is true for a job of an activity kind, whose work is its one
// activity.
func (s *Service) finishedView(ctx context.Context, j *job.Job, runID string, status enumspb.WorkflowExecutionStatus, ext, work bool) (*view, error) {
	v := &view{job: j, external: ext}
	it := s.c.GetWorkflowHistory(ctx, j.ID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, translate("read job history", err)
		}
		if err := v.apply(ev, work); err != nil {
			return nil, err
		}
	}
	v.closed(status)
	return v, nil
}

// apply reads one event of a closed workflow's history into v; work is as
// for finishedView. (closedJob builds a view with it too, from the close
// event alone.)
func (v *view) apply(ev *historypb.HistoryEvent, work bool) error {
	j, ext := v.job, v.external
	if work && workEvent(j, ev) {
		// A workflow kind's activities are its steps; an external
		// workflow's are its own business.
		return nil
	}
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
		// An external job started when a worker first took it.
		if ext && j.StartedAt.IsZero() {
			j.StartedAt = ev.GetEventTime().AsTime()
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
		var err error
		if ext {
			if v.result, err = externalResult(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult()); err != nil {
				return fmt.Errorf("job %s: %w", j.ID, err)
			}
			return nil
		}
		var out workflows.Output
		if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &out); err != nil {
			return fmt.Errorf("job %s: decode result: %w", j.ID, err)
		}
		v.result, v.blob = out.Result, out.Blob
		if out.Progress != nil {
			j.Progress = out.Progress
		}
		if work && j.StartedAt.IsZero() && !out.StartedAt.IsZero() {
			// Work run as a local activity (job.Plan.Local) has no
			// activity events: its output says when it ran.
			j.StartedAt, j.Attempt = cmp.Or(out.FirstStartedAt, out.StartedAt), max(out.Attempt, 1)
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
		j.Error = failure(ev.GetWorkflowExecutionFailedEventAttributes())
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
		reason := ev.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
		j.Error = &job.Failure{Type: "canceled", Message: "the job was terminated by an operator" + suffix(reason)}
	}
	return nil
}

// closed completes v, whose history has been applied, for its workflow's
// close status.
func (v *view) closed(status enumspb.WorkflowExecutionStatus) {
	j := v.job
	j.State = jobState(status, "", nil, false)
	if e := closeError(status); e != nil {
		j.Error = e
	}
	// An external job's webhook comes from its watch, which sees a
	// termination like any end.
	v.terminated = status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED && !v.external
	if j.State == job.StateFailed && j.Error == nil {
		j.Error = &job.Failure{Type: "failed", Message: "the job failed"}
	}
}

// closedAt sets the times of v's finished job that its workflow's close
// time gives.
func (v *view) closedAt(t *timestamppb.Timestamp, ttl time.Duration) {
	if t == nil {
		return
	}
	v.job.CompletedAt = recordTime(t)
	v.job.UpdatedAt = laterOf(v.job.CompletedAt, v.job.UpdatedAt)
	v.job.ExpiresAt = v.job.CompletedAt.Add(ttl)
}

// closeError is the error of a job whose workflow closed with status, as
// far as the status alone tells it: a cancellation and a time-out say all
// there is; nil for the others (a failure's is in the history).
func closeError(status enumspb.WorkflowExecutionStatus) *job.Failure {
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return &job.Failure{Type: "canceled", Message: "the job was canceled on request"}
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return &job.Failure{Type: "timeout", Message: "the job did not finish in its time limit"}
	}
	return nil
}

func failure(attrs *historypb.WorkflowExecutionFailedEventAttributes) *job.Failure {
	f := attrs.GetFailure()
	typ := f.GetApplicationFailureInfo().GetType()
	if typ == "" {
		typ = "failed"
	}
	return &job.Failure{Type: typ, Message: f.GetMessage()}
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

func searchKeyword(sa *commonpb.SearchAttributes, name string) (string, bool) {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return "", false
	}
	var v string
	if converter.GetDefaultDataConverter().FromPayload(p, &v) != nil {
		return "", false
	}
	return v, true
}

// recordTime is a time of a workflow's record (its start, start delay or
// close) as a status shows it: to the millisecond, as precise as every
// visibility store keeps it (SQL stores to the microsecond, Elasticsearch
// to the millisecond), so that a listing and GET show the same time.
func recordTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().Truncate(time.Millisecond)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// finishedCache keeps finished jobs' views, which never change, so reading
// a finished job costs no Temporal call after the first. Entries are
// keyed by tenant and id, and only the job's own tenant's read puts one,
// so another tenant never finds a job here (an answer faster than an
// unknown id's would tell that the job exists). It forgets the oldest
// entries first beyond its size.
type finishedCache struct {
	mu    sync.Mutex
	size  int
	views map[string]*view
	order []string
	next  int
}

func newFinishedCache(size int) *finishedCache {
	if size < 0 {
		size = 0
	}
	return &finishedCache{size: size, views: make(map[string]*view, size), order: make([]string, size)}
}

func cacheKey(tenant, id string) string { return tenant + "\x00" + id }

func (c *finishedCache) get(tenant, id string) (*view, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.views[cacheKey(tenant, id)]
	return v, ok
}

func (c *finishedCache) put(tenant, id string, v *view) {
	if c.size == 0 {
		return
	}
	key := cacheKey(tenant, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.views[key]; ok {
		return
	}
	if old := c.order[c.next]; old != "" {
		delete(c.views, old)
	}
	c.order[c.next] = key
	c.next = (c.next + 1) % c.size
	c.views[key] = v
}
