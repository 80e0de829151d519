package httpapi

import (
	"fmt"
	"net/http"
	"sync"
)

// A request that stays open (an event stream, a long-poll, a waiting
// submission) costs one request of the rate limit but holds a watch of its
// job, and Temporal look-ups with it, until it ends. Each tenant may hold
// Limits.MaxStreams of them at once.

// streamRetryAfter is the Retry-After, in seconds, of a request refused
// for the tenant's open streams: when one of them ends is unknown.
const streamRetryAfter = 5

// streamSlots counts each tenant's open streams and long-polls.
type streamSlots struct {
	mu   sync.Mutex
	open map[string]int
}

// take claims one of tenant's limit slots and returns its release (which
// may be called more than once); ok is false when all are taken. A limit
// of 0 or less is no bound.
func (s *streamSlots) take(tenant string, limit int) (release func(), ok bool) {
	if limit <= 0 {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[tenant] >= limit {
		return nil, false
	}
	if s.open == nil {
		s.open = map[string]int{}
	}
	s.open[tenant]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open[tenant]--; s.open[tenant] <= 0 {
				delete(s.open, tenant)
			}
		})
	}, true
}

// holdStream claims a slot for a request of r's tenant that stays open;
// the caller releases it when the request ends. It returns a 429 problem
// (too-many-streams) when the tenant has its maximum open.
func (s *Server) holdStream(r *http.Request) (release func(), err error) {
	tenant := s.tenant(r)
	limit := s.limiter.limits(tenant).MaxStreams
	release, ok := s.streams.take(tenant, limit)
	if ok {
		return release, nil
	}
	p := problem(http.StatusTooManyRequests, "too-many-streams", "Too many open streams",
		fmt.Sprintf("Your tenant has %d event streams and long-polls open, its maximum; close one, or poll without Prefer: wait, and retry after the indicated delay.", limit))
	p.retryAfter = streamRetryAfter
	p.quota = &quotaHeader{name: "streams", limit: limit, reset: streamRetryAfter}
	return nil, p
}
