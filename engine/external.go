package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// startExternal starts a job of an external kind: the kind's own workflow
// type on its own task queue, under the job's options (ID, reuse policy,
// memo, search attributes), with the job's input as its single JSON
// argument. Its execution timeout is the kind's timeout after the start
// delay.
func (s *Service) startExternal(ctx context.Context, opts client.StartWorkflowOptions, ext *external.Workflow, input json.RawMessage, timeout time.Duration) error {
	opts.TaskQueue = ext.TaskQueue
	opts.EnableEagerStart = false
	opts.WorkflowExecutionTimeout = opts.StartDelay + timeout
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	_, err := s.c.ExecuteWorkflow(ctx, opts, ext.Type, input)
	return err
}

// watchExternal starts the JobExternalWatch workflow that delivers the
// webhook of an external job with a callback when it ends (see package
// external). One that already runs for the job is kept.
func (s *Service) watchExternal(ctx context.Context, req job.SubmitRequest, id string, within time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	_, err := s.c.ExecuteWorkflow(cctx, client.StartWorkflowOptions{
		ID:                       id + external.WatchIDSuffix,
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.TenantKey.ValueSet(req.Tenant)),
		StaticSummary:            "webhook watch of external job " + id,
	}, external.WatchWorkflowName, external.WatchInput{JobID: id, Tenant: req.Tenant, URL: req.CallbackURL, Within: within})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return translate("start the webhook watch of job "+id, err)
	}
	return nil
}

// externalRunning fills the state of a running external job. It is queued
// until a worker has taken its first workflow task, which Temporal's
// record shows without a worker: a fresh workflow's history is its start
// and its first scheduled task, two events; the task a worker holds is
// pending and started.
func externalRunning(j *job.Job, desc *workflowservice.DescribeWorkflowExecutionResponse) {
	info := desc.GetWorkflowExecutionInfo()
	recorded, _ := searchKeyword(info.GetSearchAttributes(), workflows.StateKey.GetName())
	j.State = jobState(info.GetStatus(), recorded, nil, desc.GetWorkflowExtendedInfo().GetCancelRequested())
	taken := info.GetHistoryLength() > 2 ||
		desc.GetPendingWorkflowTask().GetState() == enumspb.PENDING_WORKFLOW_TASK_STATE_STARTED
	// A delayed job's JobState stays "scheduled": the external workflow
	// does not set it.
	if (j.State == job.StateQueued || j.State == job.StateScheduled) && taken {
		j.State = job.StateRunning
	}
	applyWorkflowMemo(j, info.GetMemo(), nil)
}

// externalResult decodes an external workflow's result, plain JSON (no
// value at all is null).
func externalResult(payloads *commonpb.Payloads) (json.RawMessage, error) {
	if len(payloads.GetPayloads()) == 0 {
		return json.RawMessage("null"), nil
	}
	var raw json.RawMessage
	if err := converter.GetDefaultDataConverter().FromPayloads(payloads, &raw); err != nil {
		return nil, fmt.Errorf("decode the external workflow's result (a JSON value is expected): %w", err)
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	return raw, nil
}

// jobQueues are the task queues jobs are started on: jobgate's own and
// every external kind's, sorted.
func (s *Service) jobQueues() []string {
	seen := map[string]bool{s.cfg.TaskQueue: true}
	out := []string{s.cfg.TaskQueue}
	if s.kinds != nil {
		var more []string
		for _, k := range s.kinds.Kinds() {
			if ext, ok := external.Of(k); ok && !seen[ext.TaskQueue] {
				seen[ext.TaskQueue] = true
				more = append(more, ext.TaskQueue)
			}
		}
		sort.Strings(more)
		out = append(out, more...)
	}
	return out
}

// queueOf is the task queue jobs of kind start on.
func (s *Service) queueOf(kind string) string {
	if s.kinds != nil {
		if k, ok := s.kinds.Lookup(kind); ok {
			if ext, ok := external.Of(k); ok {
				return ext.TaskQueue
			}
		}
	}
	return s.cfg.TaskQueue
}

// jobsQuery is the visibility filter of a tenant's jobs: every workflow
// jobgate started as a job carries the JobKind search attribute (the
// webhook, cleanup and watch workflows that follow jobs do not), whatever
// its workflow type, so external kinds' jobs are found even after their
// kind left the kinds file.
func jobsQuery(tenant string) string {
	return fmt.Sprintf("%s = '%s' AND %s IS NOT NULL", workflows.TenantKey.GetName(), tenant, workflows.KindKey.GetName())
}
