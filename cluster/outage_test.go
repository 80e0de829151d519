package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// postgresOutage stops PostgreSQL for ~10 s under a steady, bounded
// submission loop on both APIs. Each submission carries its own
// Idempotency-Key and is retried, as a client would, until accepted. Every
// failed attempt must be a 503 with Retry-After; /readyz of an API and of
// a worker must go 503 while the database is down and 200 after; every
// accepted job must complete, and there must be exactly one job per key.
func (s *stack) postgresOutage(t *testing.T) {
	const (
		outage     = 10 * time.Second
		keysPerAPI = 40
	)
	var (
		mu         sync.Mutex
		accepted   = map[string]string{} // key → job id
		failures   = map[int]int{}       // status → count
		violations []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for api := range 2 {
		wg.Go(func() {
			for i := range keysPerAPI {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("outage-%d-%d", api, i)
				giveUp := time.Now().Add(90 * time.Second)
				for time.Now().Before(giveUp) {
					status, retryAfter, id, body, err := s.post(api, "outage", `{"kind":"sleep","input":{"seconds":0}}`, key)
					mu.Lock()
					switch {
					case err != nil:
						violations = append(violations, fmt.Sprintf("%s: %v", key, err))
					case status == http.StatusAccepted:
						accepted[key] = id
					default:
						failures[status]++
						if status != http.StatusServiceUnavailable || retryAfter == "" {
							violations = append(violations, fmt.Sprintf("%s: %d (Retry-After %q) %s", key, status, retryAfter, body))
						}
					}
					_, ok := accepted[key]
					mu.Unlock()
					if ok {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}

	time.Sleep(2 * time.Second) // submissions before the outage
	down := time.Now()
	s.pg.Stop()
	api, worker := s.apis[0], s.workers[0]
	var apiDown, workerDown bool
	for time.Since(down) < outage {
		apiDown = apiDown || s.probe(api) == http.StatusServiceUnavailable
		workerDown = workerDown || s.probe(worker) == http.StatusServiceUnavailable
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, s.pg.Resume())
	t.Logf("PostgreSQL down for %s", time.Since(down).Round(time.Millisecond))
	require.True(t, apiDown, "the API's /readyz answered 503 while PostgreSQL was down")
	require.True(t, workerDown, "the worker's /readyz answered 503 while PostgreSQL was down")
	back := time.Now()
	eventually(t, 90*time.Second, "API and worker ready again", func() bool {
		return s.probe(api) == http.StatusOK && s.probe(worker) == http.StatusOK
	})
	t.Logf("ready again %s after PostgreSQL came back", time.Since(back).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // submissions after the outage
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d submissions accepted; failed attempts by status: %v", len(accepted), failures)
	require.Empty(t, violations, "every failed attempt is a 503 with Retry-After")
	require.NotZero(t, failures[http.StatusServiceUnavailable], "the outage was seen")
	for key, id := range accepted {
		s.waitState("outage", id, "succeeded", 2*time.Minute)
		_ = key
	}
	want := int64(len(accepted))
	eventually(t, time.Minute, "visibility holds every accepted job", func() bool {
		n := s.count(`JobTenant = "outage" AND ExecutionStatus = "Completed"`)
		require.LessOrEqual(t, n, want, "no job beyond one per key")
		return n == want
	})
	require.EqualValues(t, want, s.count(`JobTenant = "outage"`), "one job per key, none lost, none doubled")
}

// post submits body with key to API api as tenant without failing the
// test (it runs in goroutines).
func (s *stack) post(api int, tenant, body, key string) (status int, retryAfter, id, text string, err error) {
	req, err := http.NewRequest(http.MethodPost, s.apis[api].url+"/v1/jobs", strings.NewReader(body))
	if err != nil {
		return 0, "", "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.keys[tenant])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, "", "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header.Get("Retry-After"), m.ID, string(b), nil
}
