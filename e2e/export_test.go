package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// mustFinishSleeps runs n zero-second sleep jobs to success and waits
// until listings show them; it returns their ids.
func (e *env) mustFinishSleeps(n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i], _ = e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	}
	for _, id := range ids {
		e.waitState(id, job.StateSucceeded, 15*time.Second)
	}
	eventually(e.t, 15*time.Second, "listed as succeeded", func() bool {
		return len(e.do(http.MethodGet, "/v1/jobs?state=succeeded&kind=sleep", "").JSON(e.t)["jobs"].([]any)) >= n
	})
	return ids
}

// outputOf reads a succeeded job's workflow result from its history.
func (e *env) outputOf(id string) workflows.Output {
	e.t.Helper()
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(e.t, err)
		if attrs := ev.GetWorkflowExecutionCompletedEventAttributes(); attrs != nil {
			var out workflows.Output
			require.NoError(e.t, converter.GetDefaultDataConverter().FromPayloads(attrs.GetResult(), &out))
			return out
		}
	}
	e.t.Fatalf("job %s has no result in its history", id)
	return workflows.Output{}
}

// An export writes the caller's jobs to blob storage as CSV; the result
// endpoint streams the file byte for byte, with its type, length and file
// name, and serves ranges and conditional requests.
func TestExportCSVDownload(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	ids := e.mustFinishSleeps(3)
	other := mustStartEnv(t, envOptions{noWorker: true})
	otherID, _ := other.submit(`{"kind":"sleep","input":{"seconds":1}}`)

	id, _ := e.submit(`{"kind":"export","input":{"format":"csv","filter":{"kind":"sleep"}}}`)
	e.waitState(id, job.StateSucceeded, 30*time.Second)

	out := e.outputOf(id)
	require.Empty(t, out.Result, "the history carries only a pointer")
	require.NotNil(t, out.Blob)
	require.Equal(t, "jobs-"+id+".csv", out.Blob.Filename)
	written, err := e.Blobs.Get(context.Background(), out.Blob.Key)
	require.NoError(t, err)

	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, written, resp.Body, "byte for byte what was written")
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, fmt.Sprint(len(written)), resp.Header.Get("Content-Length"))
	require.Equal(t, `attachment; filename=jobs-`+id+`.csv`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
	sum := sha256.Sum256(written)
	require.Equal(t, `"`+hex.EncodeToString(sum[:])+`"`, resp.Header.Get("ETag"))
	require.Equal(t, hex.EncodeToString(sum[:]), out.Blob.SHA256)

	rows, err := csv.NewReader(bytes.NewReader(resp.Body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"id", "kind", "state", "createdAt", "completedAt"}, rows[0])
	exported := map[string][]string{}
	for _, row := range rows[1:] {
		exported[row[0]] = row
	}
	for _, jid := range ids {
		require.Contains(t, exported, jid)
		require.Equal(t, "succeeded", exported[jid][2])
		require.NotEmpty(t, exported[jid][4])
	}
	require.NotContains(t, exported, otherID, "only the caller's jobs")
	require.NotContains(t, exported, id, "not the export itself")

	// Ranges: one, several, and one outside the file.
	part := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=3-12")
	require.Equal(t, http.StatusPartialContent, part.StatusCode)
	require.Equal(t, written[3:13], part.Body)
	require.Equal(t, fmt.Sprintf("bytes 3-12/%d", len(written)), part.Header.Get("Content-Range"))
	tail := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=-5")
	require.Equal(t, written[len(written)-5:], tail.Body)
	multi := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=0-1,5-6")
	require.Equal(t, http.StatusPartialContent, multi.StatusCode)
	require.True(t, strings.HasPrefix(multi.Header.Get("Content-Type"), "multipart/byteranges"))
	p := requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", fmt.Sprintf("bytes=%d-", len(written)+10)),
		http.StatusRequestedRangeNotSatisfiable, "range-not-satisfiable")
	require.Contains(t, p["detail"], fmt.Sprint(len(written)))

	// Conditional requests and HEAD.
	etag := resp.Header.Get("ETag")
	require.Equal(t, http.StatusNotModified, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "If-None-Match", etag).StatusCode)
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "If-Match", `"nope"`), http.StatusPreconditionFailed, "precondition-failed")
	stale := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=0-1", "If-Range", `"stale"`)
	require.Equal(t, http.StatusOK, stale.StatusCode, "If-Range with another tag gets the whole file")
	head := e.do(http.MethodHead, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.Empty(t, head.Body)
	require.Equal(t, fmt.Sprint(len(written)), head.Header.Get("Content-Length"))
}

// An NDJSON export can be zipped: the download is a zip archive holding
// the NDJSON file.
func TestExportNDJSONZipped(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	ids := e.mustFinishSleeps(2)
	id, _ := e.submit(`{"kind":"export","input":{"format":"ndjson","zip":true,"filter":{"state":"succeeded","createdFrom":"` +
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}}}`)
	e.waitState(id, job.StateSucceeded, 30*time.Second)

	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/zip", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Disposition"), "jobs-"+id+".ndjson.zip")
	zr, err := zip.NewReader(bytes.NewReader(resp.Body), int64(len(resp.Body)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	require.Equal(t, "jobs-"+id+".ndjson", zr.File[0].Name)
	f, err := zr.File[0].Open()
	require.NoError(t, err)
	data, err := io.ReadAll(f)
	require.NoError(t, err)
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		var rec struct{ ID, Kind, State string }
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		require.Equal(t, "succeeded", rec.State)
		seen[rec.ID] = true
	}
	for _, jid := range ids {
		require.True(t, seen[jid], "job %s exported", jid)
	}

	// A filter that keeps nothing exports an empty file.
	empty, _ := e.submit(`{"kind":"export","input":{"format":"ndjson","filter":{"createdTo":"2001-01-01T00:00:00Z"}}}`)
	e.waitState(empty, job.StateSucceeded, 30*time.Second)
	got := e.do(http.MethodGet, "/v1/jobs/"+empty+"/result", "")
	require.Equal(t, http.StatusOK, got.StatusCode)
	require.Empty(t, got.Body)
	require.Equal(t, "application/x-ndjson", got.Header.Get("Content-Type"))
}

// A JSON result over the threshold goes to blob storage: the history
// carries a pointer and GET …/result streams the very same JSON, inline
// (no Content-Disposition), with ranges.
func TestLargeResultInBlobStorage(t *testing.T) {
	t.Parallel()
	big := `{"rows":["` + strings.Repeat("x", 300<<10) + `"]}`
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": jsonServer(t, big)}}))
	e.waitState(id, job.StateSucceeded, 20*time.Second)

	out := e.outputOf(id)
	require.Empty(t, out.Result)
	require.NotNil(t, out.Blob)
	require.Greater(t, out.Blob.Size, int64(300<<10))
	require.Empty(t, out.Blob.Filename)

	resp := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Empty(t, resp.Header.Get("Content-Disposition"))
	var res struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	require.NoError(t, json.Unmarshal(resp.Body, &res))
	require.Equal(t, 200, res.Status)
	require.JSONEq(t, big, string(res.Body))
	part := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "", "Range", "bytes=0-0")
	require.Equal(t, http.StatusPartialContent, part.StatusCode)
	require.Equal(t, "{", string(part.Body))
}

// A result in blob storage is deleted when it expires, by the job's
// JobCleanup workflow; the job answers 410 from then on.
func TestExpiredResultBlobIsDeleted(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{resultTTL: 8 * time.Second, allResultsToBlobs: true})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
	out := e.outputOf(id)
	require.NotNil(t, out.Blob, "every result goes to blob storage with a negative threshold")
	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, result.StatusCode)
	require.JSONEq(t, `{"slept":0}`, string(result.Body))
	ok, err := e.Blobs.Exists(context.Background(), out.Blob.Key)
	require.NoError(t, err)
	require.True(t, ok)

	eventually(t, 30*time.Second, "410 after the TTL", func() bool {
		return e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").StatusCode == http.StatusGone
	})
	eventually(t, 30*time.Second, "blob deleted", func() bool {
		ok, err := e.Blobs.Exists(context.Background(), out.Blob.Key)
		require.NoError(t, err)
		return !ok
	})
	// The blob goes in the cleanup workflow's last activity; the workflow
	// completes a moment after.
	eventually(t, 10*time.Second, "cleanup workflow completed", func() bool {
		desc, err := e.Temporal.DescribeWorkflowExecution(context.Background(), id+":cleanup", "")
		require.NoError(t, err)
		return desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	requireProblem(t, e.do(http.MethodGet, "/v1/jobs/"+id+"/result", ""), http.StatusGone, "expired")
}

// Roles api and worker need blob storage they share: without
// JOBGATE_BLOB_URL or an explicit JOBGATE_DATA_DIR they refuse to start,
// saying what to set.
func TestSplitRolesNeedBlobStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	for _, role := range []string{"api", "worker"} {
		// A binary that starts after all would serve until killed: the
		// deadline fails the test instead of hanging it.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, mustBuildBinary(t))
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "JOBGATE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "JOBGATE_ROLE="+role, "JOBGATE_TEMPORAL_ADDRESS="+temporalServer.FrontendAddress())
		out, err := cmd.CombinedOutput()
		require.NoError(t, ctx.Err(), "role %s started without blob storage and ran until killed:\n%s", role, out)
		require.Error(t, err, "role %s started without blob storage", role)
		require.Contains(t, string(out), "JOBGATE_BLOB_URL", role)
		require.Contains(t, string(out), "JOBGATE_DATA_DIR", role)
	}
}
