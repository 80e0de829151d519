package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/singleflight"

	"github.com/jobgate/jobgate/workflows"
)

// activeCounts caches each tenant's count of running jobs for a second, so
// a burst of submissions costs one visibility count, not one each, and
// remembers this process's recent acceptances, which visibility may not
// show yet.
type activeCounts struct {
	// flight makes the callers that find a tenant's count stale at the
	// same moment share one visibility count.
	flight singleflight.Group
	mu     sync.Mutex
	counts map[string]activeCount
	// accepts are the times this process started a job, per tenant, for
	// the last visibilityLag.
	accepts map[string][]time.Time
}

type activeCount struct {
	n  int
	at time.Time
}

// visibilityLag bounds how long a started workflow may take to show in a
// visibility count (the server records it asynchronously, seconds behind
// under load).
const visibilityLag = 5 * time.Second

// CountActive implements job.Service from Temporal's visibility store: a
// count at most a second old, plus the jobs this process accepted in the
// visibilityLag before that count, which it may not include yet. So the
// cap is never exceeded through visibility's lag; a job accepted here
// within the lag and already visible is counted twice, which errs toward
// refusing.
func (s *Service) CountActive(ctx context.Context, tenant string) (int, error) {
	now := s.cfg.Now()
	s.active.mu.Lock()
	c, ok := s.active.counts[tenant]
	s.active.mu.Unlock()
	if !ok || now.Sub(c.at) >= time.Second {
		if !plainWord(tenant) {
			return 0, fmt.Errorf("tenant %q cannot be counted: unexpected characters", tenant)
		}
		var err error
		c, err = shared(ctx, &s.active.flight, tenant, "count active jobs", s.cfg.CallTimeout, func(ctx context.Context) (activeCount, error) {
			resp, err := s.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
				Query: fmt.Sprintf("WorkflowType = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'",
					workflows.JobWorkflowName, workflows.TenantKey.GetName(), tenant),
			})
			if err != nil {
				return activeCount{}, err
			}
			c := activeCount{n: int(resp.GetCount()), at: now}
			// Stored inside the look-up: a caller that comes after it has
			// ended finds this count, not the stale one.
			s.active.mu.Lock()
			s.active.counts[tenant] = c
			s.active.mu.Unlock()
			return c, nil
		})
		if err != nil {
			return 0, err
		}
	}
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	n := c.n
	for _, t := range s.active.accepts[tenant] {
		if t.After(c.at.Add(-visibilityLag)) {
			n++
		}
	}
	return n, nil
}

// accepted notes a job this process just started, for CountActive.
func (s *Service) accepted(tenant string) {
	now := s.cfg.Now()
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	// Drop what no count can need any more: older than the lag before
	// the oldest count that may still be served (a second old).
	keep := s.active.accepts[tenant][:0]
	for _, t := range s.active.accepts[tenant] {
		if now.Sub(t) < visibilityLag+time.Second {
			keep = append(keep, t)
		}
	}
	s.active.accepts[tenant] = append(keep, now)
}
