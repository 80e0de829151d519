package e2e

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// headerServer answers with n headers of size bytes each and a body of
// body bytes.
func headerServer(t *testing.T, n, size, body int) string {
	t.Helper()
	value := strings.Repeat("h", size)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range n {
			w.Header().Set("X-Big-"+strconv.Itoa(i), value)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(strings.Repeat("b", body)))
	}))
	t.Cleanup(target.Close)
	return target.URL
}

// JOBGATE_MAX_RESPONSE_BYTES bounds a response as its result holds it,
// headers and body together: headers over it are refused before they are
// read whole, and headers and a body each under it but together over it
// fail the job too, with response-too-large, as an oversized body does.
func TestResponseHeadersCountTowardTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	e := mustStartEnv(t, envOptions{allowPrivate: true, maxResponseBytes: limit})
	for _, tc := range []struct {
		name                string
		headers, size, body int
		wantDetail          string
	}{
		{name: "a 2-byte body under huge headers", headers: 64, size: 16 << 10, body: 2, wantDetail: "headers are over the 65536-byte limit"},
		{name: "headers and body each under, together over", headers: 10, size: 4000, body: 30 << 10, wantDetail: "is over the 65536-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": headerServer(t, tc.headers, tc.size, tc.body)}}))
			failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
			problem, _ := failed["error"].(map[string]any)
			require.Contains(t, problem["title"], "response-too-large", "%v", failed)
			require.Contains(t, problem["detail"], tc.wantDetail)
			require.EqualValues(t, 1, failed["attempt"], "an oversized response is not retried")
		})
	}

	t.Run("headers and body together under the limit", func(t *testing.T) {
		id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": headerServer(t, 5, 2000, 20<<10)}}))
		e.waitState(id, job.StateSucceeded, workerRoundTrip)
		result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").JSON(t)
		require.Len(t, result["body"], 20<<10)
		require.Contains(t, result["headers"], "X-Big-4")
	})
}
