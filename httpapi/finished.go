package httpapi

import (
	"encoding/json"
	"sync"

	"github.com/jobgate/jobgate/job"
)

// finishedBodies keeps the encoded status bodies of finished jobs without
// a webhook: such a job never changes, so its body, keyed by job, version
// (the ETag) and URL base, can be written again as it is. The engine serves
// finished jobs from memory; this spares their reads the JSON encoding and
// its allocations as well.
type finishedBodies struct {
	mu sync.Mutex
	m  map[bodyKey][]byte
}

type bodyKey struct{ id, etag, base string }

// maxFinishedBodies bounds the cache (a status body is well under 1 KiB);
// past it, a tenth of the entries, arbitrary ones, make room.
const maxFinishedBodies = 10000

// cacheable tells whether j's status body never changes.
func cacheable(j *job.Job) bool { return j.State.Terminal() && j.Callback == nil }

// body returns j's encoded status under base, from the cache or encoded
// now (and kept).
func (c *finishedBodies) body(j *job.Job, etag, base string) ([]byte, error) {
	k := bodyKey{j.ID, etag, base}
	c.mu.Lock()
	b, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	data, err := json.Marshal(NewStatus(j, base))
	if err != nil {
		return nil, err
	}
	b = append(data, '\n')
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[bodyKey][]byte{}
	}
	if len(c.m) >= maxFinishedBodies {
		for old := range c.m {
			delete(c.m, old)
			if len(c.m) < maxFinishedBodies*9/10 {
				break
			}
		}
	}
	c.m[k] = b
	return b, nil
}
