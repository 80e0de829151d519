package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/sync/singleflight"

	"github.com/jobgate/jobgate/job"
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
	accepts map[string]*recentAccepts
	// starting are the submissions admitted under a tenant's cap whose
	// start has not returned yet, per tenant (created on first use).
	starting map[string]int
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
	c, err := s.visibleActive(ctx, tenant)
	if err != nil {
		return 0, err
	}
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	return s.active.total(tenant, c), nil
}

// reserveActive admits one job of tenant under its cap of limit active
// jobs, or returns a *job.QuotaError. The admitted job counts as active
// until the returned release is called, once, after its start returned:
// with started true it then counts as accepted, with false not at all. So
// concurrent submissions in one process never pass the cap together.
func (s *Service) reserveActive(ctx context.Context, tenant string, limit int) (release func(started bool), err error) {
	c, err := s.visibleActive(ctx, tenant)
	if err != nil {
		return nil, err
	}
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	if n := s.active.total(tenant, c); n >= limit {
		return nil, &job.QuotaError{Active: n, Limit: limit}
	}
	if s.active.starting == nil {
		s.active.starting = map[string]int{}
	}
	s.active.starting[tenant]++
	var once sync.Once
	return func(started bool) {
		once.Do(func() {
			s.active.mu.Lock()
			defer s.active.mu.Unlock()
			if s.active.starting[tenant]--; s.active.starting[tenant] <= 0 {
				delete(s.active.starting, tenant)
			}
			if started {
				s.acceptedLocked(tenant)
			}
		})
	}, nil
}

// noteStart returns a release for a job admitted without a cap: a start
// counts as accepted.
func (s *Service) noteStart(tenant string) func(started bool) {
	var once sync.Once
	return func(started bool) {
		once.Do(func() {
			if started {
				s.accepted(tenant)
			}
		})
	}
}

// total is a tenant's active jobs: the visible count c, the acceptances
// since visibilityLag before it, and the starts under way. The caller
// holds a.mu.
func (a *activeCounts) total(tenant string, c activeCount) int {
	n := c.n + a.starting[tenant]
	if r := a.accepts[tenant]; r != nil {
		n += r.after(c.at.Add(-visibilityLag))
	}
	return n
}

// visibleActive is the tenant's count of running jobs in visibility, at
// most a second old.
func (s *Service) visibleActive(ctx context.Context, tenant string) (activeCount, error) {
	now := s.cfg.Now()
	s.active.mu.Lock()
	c, ok := s.active.counts[tenant]
	s.active.mu.Unlock()
	if !ok || now.Sub(c.at) >= time.Second {
		if !plainWord(tenant) {
			return activeCount{}, fmt.Errorf("tenant %q cannot be counted: unexpected characters", tenant)
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
			return activeCount{}, err
		}
	}
	return c, nil
}

// accepted notes a job this process just started, for CountActive.
func (s *Service) accepted(tenant string) {
	s.active.mu.Lock()
	defer s.active.mu.Unlock()
	s.acceptedLocked(tenant)
}

// acceptedLocked is accepted with s.active.mu held.
func (s *Service) acceptedLocked(tenant string) {
	now := s.cfg.Now()
	r := s.active.accepts[tenant]
	if r == nil {
		r = &recentAccepts{}
		s.active.accepts[tenant] = r
	}
	// Drop what no count can need any more: older than the lag before
	// the oldest count that may still be served (a second old).
	r.add(now, now.Add(-visibilityLag-time.Second))
}

// recentAccepts are one tenant's acceptance times in the order they
// happened, oldest first. Adding and counting take O(log n) however many
// jobs a tenant starts a second: expired times are dropped from the front,
// and a count searches the sorted times instead of walking them.
type recentAccepts struct {
	times []time.Time
}

// add appends t and drops the times up to and including expired.
func (r *recentAccepts) add(t, expired time.Time) {
	// The dropped prefix's memory goes when append next moves the live
	// times to a new array.
	r.times = r.times[r.firstAfter(expired):]
	// A clock that stepped back would break the order the searches rely
	// on; such a time counts as the latest one instead.
	if n := len(r.times); n > 0 && t.Before(r.times[n-1]) {
		t = r.times[n-1]
	}
	r.times = append(r.times, t)
}

// after counts the times after cutoff.
func (r *recentAccepts) after(cutoff time.Time) int {
	return len(r.times) - r.firstAfter(cutoff)
}

// firstAfter is the index of the first time after cutoff.
func (r *recentAccepts) firstAfter(cutoff time.Time) int {
	return sort.Search(len(r.times), func(i int) bool { return r.times[i].After(cutoff) })
}
