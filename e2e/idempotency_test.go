package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// Replaying a key returns the same job, queued, running or finished; the
// same key with another request is a 422 and changes nothing.
func TestIdempotencyReplayAndReuse(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	key := "order-" + t.Name()
	body := `{"kind":"sleep","input":{"seconds":1}}`

	id, first := e.submit(body, "Idempotency-Key", key)
	require.Equal(t, e.keyedID(e.Tenant, key), id, "the job id is derived from tenant and key")

	// Same request with other spacing and key order: a replay.
	replay := e.do(http.MethodPost, "/v1/jobs", `{ "input": {"seconds": 1}, "kind": "sleep" }`, "Idempotency-Key", key)
	require.Equal(t, http.StatusAccepted, replay.StatusCode, "body: %s", replay.Body)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, first.Header.Get("Location"), replay.Header.Get("Location"))
	require.Equal(t, id, replay.JSON(t)["id"])

	// The draft's quoted form of the same key is the same key.
	quoted := e.do(http.MethodPost, "/v1/jobs", body, "Idempotency-Key", `"`+key+`"`)
	require.Equal(t, "true", quoted.Header.Get("Idempotent-Replayed"))
	require.Equal(t, id, quoted.JSON(t)["id"])

	// Another request under the same key.
	reused := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":2}}`, "Idempotency-Key", key)
	requireProblem(t, reused, http.StatusUnprocessableEntity, "idempotency-key-reused")

	// Still one job, and a replay after it finished returns it finished.
	e.waitState(id, job.StateSucceeded, 15*time.Second)
	done := e.do(http.MethodPost, "/v1/jobs", body, "Idempotency-Key", key)
	require.Equal(t, http.StatusAccepted, done.StatusCode)
	require.Equal(t, "true", done.Header.Get("Idempotent-Replayed"))
	require.Equal(t, "succeeded", done.JSON(t)["state"])
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":2}}`, "Idempotency-Key", key),
		http.StatusUnprocessableEntity, "idempotency-key-reused")
	e.requireSettledCount(`WorkflowId = '`+id+`'`, 1, "one workflow in visibility")
}

// Fifty identical requests racing with one key make exactly one workflow,
// and every one of them answers with it.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	key := "race-" + t.Name()
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ids      = map[string]int{}
		fresh    int
		statuses = map[int]int{}
		errs     goErrors
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// A client retries a 503 (a Temporal call that timed out on a
			// loaded machine), as Retry-After tells it to; the retry is
			// the same keyed request, so it must not make a second job.
			var (
				resp response
				err  error
			)
			for attempt := 0; attempt < 5; attempt++ {
				resp, err = e.send(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", key)
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				errs.add(err)
				return
			}
			var accepted struct{ ID string }
			_ = json.Unmarshal(resp.Body, &accepted)
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusAccepted {
				ids[accepted.ID]++
				if resp.Header.Get("Idempotent-Replayed") == "" {
					fresh++
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	errs.requireNone(t)
	require.Equal(t, map[int]int{http.StatusAccepted: n}, statuses)
	require.Len(t, ids, 1, "every request got the same job")
	require.Equal(t, 1, fresh, "exactly one request created the job")
	id := e.keyedID(e.Tenant, key)
	require.Equal(t, n, ids[id])
	e.requireSettledCount(`WorkflowId = '`+id+`'`, 1)
	e.requireSettledCount(`TaskQueue = '`+e.TaskQueue+`'`, 1, "one workflow in all")
}

// Without a key every submission is a new job with a random id.
func TestNoKeyMeansNewJobs(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	a, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	b, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	require.NotEqual(t, a, b)
	require.Equal(t, byte('4'), a[14], "UUID version 4: %s", a)
}

// A deployment that requires the key refuses a submission without one and
// creates nothing; with a key it accepts.
func TestRequiredIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, requireKey: true})
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`), http.StatusBadRequest, "idempotency-key-missing")
	e.requireSettledCount(`TaskQueue = '`+e.TaskQueue+`'`, 0, "the refused submission created nothing")
	e.submit(`{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", "required-"+e.TaskQueue)
}
