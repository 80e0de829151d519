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

// backlog caches each task queue's backlog for a couple of seconds, so the
// overload check costs no Temporal call on most submissions.
type backlog struct {
	// flight makes the callers that find a queue's reading stale at the
	// same moment share one look-up.
	flight   singleflight.Group
	mu       sync.Mutex
	readings map[string]backlogReading
}

type backlogReading struct {
	n  int64
	at time.Time
}

// backlogTTL is how long a backlog reading is trusted.
const backlogTTL = 2 * time.Second

// Backlog returns the approximate number of tasks waiting for a worker on
// the task queue (workflow and activity tasks), at most backlogTTL old.
func (s *Service) Backlog(ctx context.Context, queue string) (int64, error) {
	now := s.cfg.Now()
	s.backlog.mu.Lock()
	if r, ok := s.backlog.readings[queue]; ok && now.Sub(r.at) < backlogTTL {
		s.backlog.mu.Unlock()
		return r.n, nil
	}
	s.backlog.mu.Unlock()

	return shared(ctx, &s.backlog.flight, queue, "describe task queue backlog", s.cfg.CallTimeout, func(ctx context.Context) (int64, error) {
		var total int64
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			resp, err := s.c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
				Namespace:     s.cfg.Namespace,
				TaskQueue:     &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
				TaskQueueType: typ,
				ReportStats:   true,
			})
			if err != nil {
				return 0, err
			}
			total += resp.GetStats().GetApproximateBacklogCount()
		}
		s.backlog.mu.Lock()
		if s.backlog.readings == nil {
			s.backlog.readings = map[string]backlogReading{}
		}
		s.backlog.readings[queue] = backlogReading{n: total, at: now}
		s.backlog.mu.Unlock()
		return total, nil
	})
}

// checkBacklog returns job.ErrOverloaded when the backlog of one of the
// task queues is over the configured depth (each queue has its own
// workers, so each is held to the depth on its own).
func (s *Service) checkBacklog(ctx context.Context, queues ...string) error {
	if s.cfg.MaxBacklog <= 0 {
		return nil
	}
	for _, queue := range queues {
		n, err := s.Backlog(ctx, queue)
		if err != nil {
			return err
		}
		if n > s.cfg.MaxBacklog {
			return fmt.Errorf("%w: %d tasks wait for a worker on %q (limit %d)", job.ErrOverloaded, n, queue, s.cfg.MaxBacklog)
		}
	}
	return nil
}
