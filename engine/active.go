package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/jobgate/jobgate/workflows"
)

// activeCounts caches each tenant's count of running jobs for a second, so
// a burst of submissions costs one visibility count, not one each.
type activeCounts struct {
	mu     sync.Mutex
	counts map[string]activeCount
}

type activeCount struct {
	n  int
	at time.Time
}

// CountActive implements job.Service from Temporal's visibility store. It
// counts jobs accepted by this process in the last second too, which the
// cached count may not include yet.
func (s *Service) CountActive(ctx context.Context, tenant string) (int, error) {
	now := s.cfg.Now()
	s.active.mu.Lock()
	c, ok := s.active.counts[tenant]
	s.active.mu.Unlock()
	if ok && now.Sub(c.at) < time.Second {
		return c.n, nil
	}
	if !plainWord(tenant) {
		return 0, fmt.Errorf("tenant %q cannot be counted: unexpected characters", tenant)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.c.CountWorkflow(cctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'",
			workflows.JobWorkflowName, workflows.TenantKey.GetName(), tenant),
	})
	if err != nil {
		return 0, translate("count active jobs", err)
	}
	n := int(resp.GetCount())
	s.active.mu.Lock()
	s.active.counts[tenant] = activeCount{n: n, at: now}
	s.active.mu.Unlock()
	return n, nil
}

// accepted counts a job this process just started into the cached count.
func (s *Service) accepted(tenant string) {
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	if c, ok := s.active.counts[tenant]; ok {
		c.n++
		s.active.counts[tenant] = c
	}
}
