package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/singleflight"

	"github.com/jobgate/jobgate/job"
)

// backlog caches the task queue's backlog for a couple of seconds, so the
// overload check costs no Temporal call on most submissions.
type backlog struct {
	// flight makes the callers that find the reading stale at the same
	// moment share one look-up.
	flight singleflight.Group
	mu     sync.Mutex
	n      int64
	at     time.Time
}

// backlogTTL is how long a backlog reading is trusted.
const backlogTTL = 2 * time.Second

// Backlog returns the approximate number of tasks waiting for a worker on
// the job task queue (workflow and activity tasks), at most backlogTTL old.
func (s *Service) Backlog(ctx context.Context) (int64, error) {
	now := s.cfg.Now()
	s.backlog.mu.Lock()
	if now.Sub(s.backlog.at) < backlogTTL {
		n := s.backlog.n
		s.backlog.mu.Unlock()
		return n, nil
	}
	s.backlog.mu.Unlock()

	return shared(ctx, &s.backlog.flight, "", "describe task queue backlog", s.cfg.CallTimeout, func(ctx context.Context) (int64, error) {
		var total int64
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := s.c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
				Namespace:     s.cfg.Namespace,
				TaskQueue:     &taskqueuepb.TaskQueue{Name: s.cfg.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
				TaskQueueType: typ,
				ReportStats:   true,
			})
			if err != nil {
				return 0, err
			}
			total += resp.GetStats().GetApproximateBacklogCount()
		}
		s.backlog.mu.Lock()
		s.backlog.n, s.backlog.at = total, now
		s.backlog.mu.Unlock()
		return total, nil
	})
}

// checkBacklog returns job.ErrOverloaded when the backlog is over the
// configured depth.
func (s *Service) checkBacklog(ctx context.Context) error {
	if s.cfg.MaxBacklog <= 0 {
		return nil
	}
	n, err := s.Backlog(ctx)
	if err != nil {
		return err
	}
	if n > s.cfg.MaxBacklog {
		return fmt.Errorf("%w: %d tasks wait for a worker on %q (limit %d)", job.ErrOverloaded, n, s.cfg.TaskQueue, s.cfg.MaxBacklog)
	}
	return nil
}
