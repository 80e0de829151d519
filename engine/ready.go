package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/job"
)

// Ready reports whether Temporal answers and a worker polls the job task
// queue. It returns job.ErrUnavailable (wrapped with the reason) if not.
func (s *Service) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	if _, err := s.c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("%w: Temporal health check: %v", job.ErrUnavailable, err)
	}
	if err := CheckStore(ctx, s.c); err != nil {
		return err
	}
	// Every task queue jobs start on: jobgate's own, and each external
	// kind's, whose workers are not jobgate's.
	var idle []string
	for _, queue := range s.jobQueues() {
		resp, err := s.c.DescribeTaskQueue(ctx, queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		if err != nil {
			return translate("describe task queue", err)
		}
		cutoff := s.cfg.Now().Add(-pollerFreshness)
		polled := false
		for _, p := range resp.GetPollers() {
			polled = polled || p.GetLastAccessTime().AsTime().After(cutoff)
		}
		if !polled {
			idle = append(idle, queue)
		}
	}
	if len(idle) > 0 {
		return &job.NoWorkerError{TaskQueues: idle}
	}
	return s.checkBacklog(ctx, s.jobQueues()...)
}

// storeProbeID is a workflow ID no job has (job IDs are UUIDs and
// Idempotency-Keys are prefixed by their tenant).
const storeProbeID = "jobgate-store-probe"

// CheckStore reports whether Temporal can read its database, which its
// health check does not tell: the frontend answers SERVING, and task queue
// descriptions come from memory, while every start, signal and listing
// fails. It describes a workflow that does not exist, which the history
// service looks up in the database: NotFound is the database answering.
// It returns job.ErrUnavailable (wrapped with the reason) if not.
func CheckStore(ctx context.Context, c client.Client) error {
	_, err := c.DescribeWorkflowExecution(ctx, storeProbeID, "")
	var notFound *serviceerror.NotFound
	if err == nil || errors.As(err, &notFound) {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("Temporal's database check: %w", err)
	}
	return fmt.Errorf("%w: Temporal's database: %v", job.ErrUnavailable, err)
}

// pollerFreshness is how recently a worker must have polled to count as
// live: a long poll lasts up to a minute.
const pollerFreshness = 90 * time.Second
