package engine

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Rerun implements job.Service: the finished job's kind, input and
// callback come from its workflow's start event (for an external kind, the
// input is the workflow's argument and the callback its webhook watch's),
// its priority from its memo; the new job is an ordinary submission that
// names it in RerunOf.
func (s *Service) Rerun(ctx context.Context, id string, req job.SubmitRequest) (*job.Job, bool, error) {
	v, err := s.load(ctx, req.Tenant, id)
	if err != nil {
		return nil, false, err
	}
	j := v.job
	if !j.State.Terminal() {
		return nil, false, &job.NotFinishedError{Job: j}
	}
	typ, args, err := s.startArgs(ctx, id)
	if err != nil {
		return nil, false, err
	}
	var in workflows.Input
	if typ == workflows.JobWorkflowName {
		if err := converter.GetDefaultDataConverter().FromPayloads(args, &in); err != nil {
			return nil, false, fmt.Errorf("job %s: decode start input: %w", id, err)
		}
	} else {
		// An external kind's workflow: its one argument is the input.
		in.Kind = j.Kind
		if err := converter.GetDefaultDataConverter().FromPayloads(args, &in.Input); err != nil {
			return nil, false, fmt.Errorf("job %s: decode start input: %w", id, err)
		}
		if j.Callback != nil {
			_, watch, err := s.startArgs(ctx, id+external.WatchIDSuffix)
			var w external.WatchInput
			if err == nil && converter.GetDefaultDataConverter().FromPayloads(watch, &w) == nil {
				in.CallbackURL = w.URL
			}
		}
	}
	req.Kind, req.CallbackURL, req.Priority, req.RerunOf = in.Kind, in.CallbackURL, j.Priority, id
	if len(req.Input) == 0 {
		req.Input = in.Input
	}
	return s.Submit(ctx, req)
}

// startArgs reads the workflow type and arguments workflow id was started
// with, from the first event of its history.
func (s *Service) startArgs(ctx context.Context, id string) (string, *commonpb.Payloads, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	it := s.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return "", nil, fmt.Errorf("job %s: empty history", id)
	}
	ev, err := it.Next()
	if err != nil {
		return "", nil, translate("read job's start", err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return "", nil, fmt.Errorf("job %s: history does not begin with its start", id)
	}
	return attrs.GetWorkflowType().GetName(), attrs.GetInput(), nil
}
