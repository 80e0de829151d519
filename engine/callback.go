package engine

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// withCallback returns v's job with the state of its webhook, read from
// the job's JobWebhook workflow once the job finished: its pending delivery
// while it retries, its outcome once it closed. A final state is kept with
// the view; it never changes.
func (s *Service) withCallback(ctx context.Context, v *view) (*job.Job, error) {
	if v.job.Callback == nil || !v.job.State.Terminal() {
		return v.job, nil
	}
	v.mu.Lock()
	final := v.finalCallback
	v.mu.Unlock()
	cb := final
	switch {
	case cb != nil:
	case v.terminated:
		cb = &job.Callback{State: job.CallbackFailed, LastError: "no webhook was sent: an operator terminated the job"}
	default:
		var err error
		if cb, err = s.readCallback(ctx, v.job); err != nil {
			return nil, err
		}
		if cb.State.Final() {
			v.mu.Lock()
			v.finalCallback = cb
			v.mu.Unlock()
		}
	}
	j := *v.job
	j.Callback = cb
	return &j, nil
}

// webhookStartGrace is how long after a job closed its JobWebhook
// workflow may still be missing: the job starts it as it closes.
const webhookStartGrace = time.Minute

// readCallback describes the job's JobWebhook workflow.
func (s *Service) readCallback(ctx context.Context, j *job.Job) (*job.Callback, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	desc, err := s.c.DescribeWorkflowExecution(cctx, j.ID+workflows.WebhookIDSuffix, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound) && s.cfg.Now().Sub(j.CompletedAt) > webhookStartGrace:
		return &job.Callback{State: job.CallbackFailed, LastError: "no webhook was sent: the job ended without starting its delivery (was it accepted by an older jobgate?)"}, nil
	case errors.As(err, &notFound):
		return &job.Callback{State: job.CallbackPending}, nil
	case err != nil:
		return nil, translate("describe webhook", err)
	}
	info := desc.GetWorkflowExecutionInfo()
	dc := converter.GetDefaultDataConverter()
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		cb := &job.Callback{State: job.CallbackPending}
		for _, pa := range desc.GetPendingActivities() {
			if pa.GetActivityType().GetName() != workflows.DeliverWebhookActivity {
				continue
			}
			cb.Attempts = int(max(pa.GetAttempt()-1, 0))
			if t := pa.GetLastAttemptCompleteTime(); t != nil && cb.Attempts > 0 {
				cb.LastAttemptAt = t.AsTime()
			}
			if t := pa.GetNextAttemptScheduleTime(); t != nil && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_SCHEDULED && cb.Attempts > 0 {
				cb.NextAttemptAt = t.AsTime()
			}
			if f := pa.GetLastFailure(); f != nil && cb.Attempts > 0 {
				cb.LastError = f.GetMessage()
				var last workflows.WebhookAttempt
				if d := f.GetApplicationFailureInfo().GetDetails(); d != nil && dc.FromPayloads(d, &last) == nil {
					cb.LastStatus = last.Status
				}
			}
		}
		return cb, nil
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var out workflows.WebhookOutcome
		if p, ok := info.GetMemo().GetFields()[workflows.CallbackMemo]; ok && dc.FromPayload(p, &out) == nil && out.State != "" {
			return &job.Callback{State: out.State, Attempts: out.Attempts, LastStatus: out.LastStatus, LastAttemptAt: out.LastAttemptAt, LastError: out.LastError}, nil
		}
	}
	return &job.Callback{State: job.CallbackFailed, LastError: "delivery was stopped by an operator"}, nil
}
