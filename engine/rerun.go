package engine

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Rerun implements job.Service: the finished job's kind, input and
// callback come from its workflow's start event, its priority from its
// memo; the new job is an ordinary submission that names it in RerunOf.
func (s *Service) Rerun(ctx context.Context, id string, req job.SubmitRequest) (*job.Job, bool, error) {
	v, err := s.load(ctx, req.Tenant, id)
	if err != nil {
		return nil, false, err
	}
	if !v.job.State.Terminal() {
		return nil, false, &job.NotFinishedError{Job: v.job}
	}
	in, err := s.startInput(ctx, id)
	if err != nil {
		return nil, false, err
	}
	req.Kind, req.CallbackURL, req.Priority, req.RerunOf = in.Kind, in.CallbackURL, v.job.Priority, id
	if len(req.Input) == 0 {
		req.Input = in.Input
	}
	return s.Submit(ctx, req)
}

// startInput reads what job id's workflow was started with.
func (s *Service) startInput(ctx context.Context, id string) (workflows.Input, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	it := s.c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return workflows.Input{}, fmt.Errorf("job %s: empty history", id)
	}
	ev, err := it.Next()
	if err != nil {
		return workflows.Input{}, translate("read job's start", err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return workflows.Input{}, fmt.Errorf("job %s: history does not begin with its start", id)
	}
	var in workflows.Input
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		return workflows.Input{}, fmt.Errorf("job %s: decode start input: %w", id, err)
	}
	return in, nil
}
