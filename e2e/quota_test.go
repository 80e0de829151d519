package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
)

// bodyServer answers a text body of the size the query's n asks for.
func bodyServer(t *testing.T) string {
	t.Helper()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(strings.Repeat("q", n)))
	}))
	t.Cleanup(target.Close)
	return target.URL
}

// A tenant's blobs (results here; exports and checkpoints alike) are
// bounded by its quota: a submission while they fill it is a 429
// blob-quota-exceeded with Retry-After, blobs written by another process
// on the same storage count, a job whose result would pass the quota
// fails with blob-quota-exceeded, and results deleted at their TTL give
// the space back.
func TestBlobQuota(t *testing.T) {
	t.Parallel()
	const quota = 300_000
	e := mustStartEnv(t, envOptions{allowPrivate: true, allResultsToBlobs: true, resultTTL: 8 * time.Second,
		blobQuota: quota})
	url := bodyServer(t)
	call := func(n int) string {
		return mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": url + "?n=" + strconv.Itoa(n)}})
	}

	first, _ := e.submit(call(100_000))
	e.waitState(first, job.StateSucceeded, workerRoundTrip)

	// Another process (another worker on the same bucket) fills the rest.
	other, err := blob.Open(context.Background(), e.Blobs.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	require.NoError(t, other.Put(context.Background(), "results/elsewhere/result.json", bytes.Repeat([]byte("x"), 250_000), blob.Attrs{Tenant: e.Tenant}))
	var refused response
	eventually(t, 10*time.Second, "submissions refused once the quota is used up", func() bool {
		refused = e.do(http.MethodPost, "/v1/jobs", call(10))
		return refused.StatusCode == http.StatusTooManyRequests
	})
	p := requireProblem(t, refused, http.StatusTooManyRequests, "blob-quota-exceeded")
	require.Equal(t, "60", refused.Header.Get("Retry-After"))
	require.Contains(t, p["detail"], "300000-byte blob storage quota")
	require.Equal(t, `"blob-bytes";q=300000`, refused.Header.Get("RateLimit-Policy"))

	require.NoError(t, other.Delete(context.Background(), "results/elsewhere/result.json"))
	var second string
	eventually(t, 10*time.Second, "submissions accepted once space is freed", func() bool {
		resp := e.do(http.MethodPost, "/v1/jobs", call(250_000))
		if resp.StatusCode != http.StatusAccepted {
			return false
		}
		second, _ = resp.JSON(t)["id"].(string)
		return true
	})
	// 100 kB stored and 250 kB more would pass 300 kB: the job fails.
	failed := e.waitState(second, job.StateFailed, workerRoundTrip).JSON(t)
	problem, _ := failed["error"].(map[string]any)
	require.Contains(t, problem["title"], "blob-quota-exceeded", "%v", failed)
	require.Contains(t, problem["detail"], "quota of 300000 bytes")

	// The first result expires and is deleted: its space comes back.
	eventually(t, 40*time.Second, "the first result deleted at its TTL", func() bool {
		n, err := e.Blobs.Usage(context.Background(), e.Tenant)
		require.NoError(t, err)
		return n == 0
	})
	third, _ := e.submit(call(250_000))
	e.waitState(third, job.StateSucceeded, workerRoundTrip)
}

// A batch's checkpoints count toward its tenant's quota: a batch whose
// checkpoints would pass it fails with blob-quota-exceeded, and the
// checkpoints it wrote are deleted with it, giving the space back.
func TestBlobQuotaBoundsBatchCheckpoints(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{allowPrivate: true, blobQuota: 50_000})
	url := bodyServer(t)
	requests := make([]map[string]any, 5)
	for i := range requests {
		requests[i] = map[string]any{"url": url + "?n=20000"}
	}
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "batch.http", "input": map[string]any{"requests": requests, "concurrency": 1}}))
	failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
	problem, _ := failed["error"].(map[string]any)
	require.Contains(t, problem["title"], "blob-quota-exceeded", "%v", failed)
	eventually(t, 20*time.Second, "the checkpoints deleted with the job", func() bool {
		n, err := e.Blobs.Usage(context.Background(), e.Tenant)
		require.NoError(t, err)
		return n == 0
	})
}

// An export counts toward its tenant's quota like any result: one that
// would pass it fails with blob-quota-exceeded and leaves no file.
func TestBlobQuotaBoundsExports(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{blobQuota: 64})
	for range 3 {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
		e.waitState(id, job.StateSucceeded, workerRoundTrip)
	}
	id, _ := e.submit(`{"kind":"export","input":{"format":"csv"}}`)
	failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
	problem, _ := failed["error"].(map[string]any)
	require.Contains(t, problem["title"], "blob-quota-exceeded", "%v", failed)
	keys, err := e.Blobs.List(context.Background(), "results/"+id+"/")
	require.NoError(t, err)
	require.Empty(t, keys, "the partial export is discarded")
	n, err := e.Blobs.Usage(context.Background(), e.Tenant)
	require.NoError(t, err)
	require.Zero(t, n)
}
