package engine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
)

// SendInput implements job.Service: the input goes to the job's workflow
// as a Temporal Update named after it, with the body as its one argument,
// and the answer waits until the workflow has taken it. The Update's ID is
// derived from key, so that Temporal itself takes a retried delivery once
// (it answers a known Update ID with the first delivery's outcome).
func (s *Service) SendInput(ctx context.Context, tenant, id, name, key string, body json.RawMessage) (*job.Job, error) {
	v, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	j := v.job
	if s.kinds == nil {
		return nil, errors.New("send input: this engine.Service was built without kinds")
	}
	if err := s.kinds.CheckInput(j.Kind, name, body); err != nil {
		return nil, err
	}
	if j.State.Terminal() {
		return nil, &job.NotWaitingError{Job: j, Input: name}
	}
	updateID := uuid.NewString()
	if key != "" {
		updateID = "input:" + name + ":" + key
	}
	// Taking the input needs a worker's round trip, longer than a read.
	cctx, cancel := context.WithTimeout(ctx, 2*s.cfg.CallTimeout)
	defer cancel()
	h, err := s.c.UpdateWorkflow(cctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateID:     updateID,
		UpdateName:   name,
		Args:         []any{body},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(cctx, nil)
	}
	if err != nil {
		return nil, s.inputError(ctx, tenant, id, name, err)
	}
	return s.Get(ctx, tenant, id)
}

// inputError translates a refused or failed Update into the job errors of
// SendInput.
func (s *Service) inputError(ctx context.Context, tenant, id, name string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if appErr.Type() == flow.RejectedType {
			return &job.InputRejectedError{Input: name, Reason: appErr.Message()}
		}
		// Not waiting for it (flow.NotWaitingType), or a workflow with no
		// handler of that name yet: the SDK rejects the Update.
		if j, gerr := s.Get(ctx, tenant, id); gerr == nil {
			return &job.NotWaitingError{Job: j, Input: name}
		}
		return &job.NotWaitingError{Job: &job.Job{ID: id}, Input: name}
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) || strings.Contains(err.Error(), "workflow execution already completed") {
		// The job ended between the look-up and the delivery.
		j, gerr := s.Get(ctx, tenant, id)
		if gerr != nil {
			return gerr
		}
		return &job.NotWaitingError{Job: j, Input: name}
	}
	return translate("deliver input", err)
}
