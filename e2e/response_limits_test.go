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

// A batch's items' results together stay under
// JOBGATE_MAX_BATCH_RESULT_BYTES: 192 calls answering a 2-byte body under
// 200 KB of headers each (38 MB of results unbounded) make a result of
// about the bound, where the responses that did not fit keep their status
// and say why.
func TestBatchResultIsBounded(t *testing.T) {
	t.Parallel()
	const budget = 2 << 20
	e := mustStartEnv(t, envOptions{allowPrivate: true, maxResponseBytes: 256 << 10, maxBatchResultBytes: budget})
	url := headerServer(t, 50, 4000, 2)
	requests := make([]map[string]any, 192)
	for i := range requests {
		requests[i] = map[string]any{"url": url}
	}
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "batch.http", "input": map[string]any{"requests": requests, "concurrency": 16}}))
	e.waitState(id, job.StateSucceeded, 2*workerRoundTrip)

	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.LessOrEqual(t, len(resp.Body), budget+192*512, "the result stays within the bound and a few hundred bytes per trimmed item")
	var result struct {
		Items []struct {
			Status  int            `json:"status"`
			Headers map[string]any `json:"headers"`
			Error   *struct{ Type, Message string }
		} `json:"items"`
		Total, Succeeded, Failed int
	}
	require.NoError(t, jsonUnmarshal(string(resp.Body), &result))
	require.Len(t, result.Items, 192)
	require.Equal(t, 192, result.Total)
	kept := 0
	for _, it := range result.Items {
		require.Equal(t, http.StatusOK, it.Status, "every item keeps its status")
		if it.Error == nil {
			kept++
			require.Contains(t, it.Headers, "X-Big-49")
			continue
		}
		require.Equal(t, "batch-result-too-large", it.Error.Type)
		require.Contains(t, it.Error.Message, "JOBGATE_MAX_BATCH_RESULT_BYTES")
		require.Nil(t, it.Headers)
	}
	require.Positive(t, kept, "responses that fit are kept")
	require.Less(t, kept, 20, "about 2 MiB / 200 KB of them fit")
	require.Equal(t, kept, result.Succeeded)
	require.Equal(t, 192-kept, result.Failed)
}
