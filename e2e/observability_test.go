package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
)

// metricValue returns the value of the first sample of /metrics matching
// the name and every label given ("name{a="b"}" style), or -1.
func metricValue(t *testing.T, text, name string, labels ...string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			var v float64
			_, err := fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%g", &v)
			require.NoError(t, err, line)
			return v
		}
	}
	return -1
}

// The request id of a submission (X-Request-Id) is in its workflow's memo,
// beside the tenant and creation time, where an operator looking at the job
// in the Temporal Web UI finds it.
func TestRequestIDInWorkflowMemo(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	id, resp := e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	requestID := resp.Header.Get("X-Request-Id")
	require.NotEmpty(t, requestID)
	desc, err := e.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	p, ok := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["job"]
	require.True(t, ok, "memo: %v", desc.GetWorkflowExecutionInfo().GetMemo())
	var memo map[string]any
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &memo))
	require.Equal(t, requestID, memo["requestId"])
	require.Equal(t, e.TaskQueue, memo["tenant"], "the env's tenant")
	require.Equal(t, resp.JSON(t)["createdAt"], memo["createdAt"])
	// Only a keyed submission is fingerprinted: no other request can name
	// this job.
	require.NotContains(t, memo, "fingerprint")
	keyed, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", "memo-key")
	desc, err = e.Temporal.DescribeWorkflowExecution(context.Background(), keyed, "")
	require.NoError(t, err)
	var keyedMemo map[string]any
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["job"], &keyedMemo))
	require.NotEmpty(t, keyedMemo["fingerprint"])
}

// /metrics, on its own listener, shows HTTP requests by route and code,
// accepted and finished jobs by kind and state, the accept latency, and the
// Temporal SDK's own metrics; the API's port does not serve them.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{metrics: true})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
	e.do(http.MethodGet, "/v1/jobs/7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11", "")

	var text string
	eventually(t, 10*time.Second, "finished job counted", func() bool {
		resp, err := http.Get(e.MetricsURL + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		text = string(body)
		return metricValue(t, text, "jobgate_jobs_finished", `kind="sleep"`, `state="succeeded"`) >= 1
	})
	require.EqualValues(t, 1, metricValue(t, text, "jobgate_http_requests_total", `route="/v1/jobs"`, `method="POST"`, `code="202"`))
	require.EqualValues(t, 1, metricValue(t, text, "jobgate_http_requests_total", `route="/v1/jobs/{id}"`, `code="404"`))
	require.EqualValues(t, 1, metricValue(t, text, "jobgate_jobs_accepted_total", `kind="sleep"`))
	require.EqualValues(t, 1, metricValue(t, text, "jobgate_job_accept_duration_seconds_count"))
	require.Positive(t, metricValue(t, text, "jobgate_http_request_duration_seconds_count", `route="/v1/jobs/{id}"`))
	require.Regexp(t, regexp.MustCompile(`(?m)^temporal_request(_total)?\{`), text, "SDK client metrics")
	// sleep 0 runs as a local activity (job.Plan.Local).
	require.Regexp(t, regexp.MustCompile(`(?m)^temporal_local_activity_execution_latency`), text, "SDK worker metrics")

	requireProblem(t, e.do(http.MethodGet, "/metrics", ""), http.StatusNotFound, "no-such-endpoint")
}

// One trace runs from the HTTP request through the workflow start to the
// workflow and its activity.
func TestTracing(t *testing.T) {
	t.Parallel()
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := mustStartEnv(t, envOptions{tracer: tp})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)

	want := []string{"POST /v1/jobs", "StartWorkflow:Job", "RunWorkflow:Job", "StartActivity:sleep", "RunActivity:sleep"}
	var byName map[string]sdktrace.ReadOnlySpan
	eventually(t, 10*time.Second, "every span ended", func() bool {
		byName = map[string]sdktrace.ReadOnlySpan{}
		for _, s := range recorder.Ended() {
			if _, seen := byName[s.Name()]; !seen {
				byName[s.Name()] = s
			}
		}
		for _, n := range want {
			if _, ok := byName[n]; !ok {
				return false
			}
		}
		return true
	})
	traceID := byName["POST /v1/jobs"].SpanContext().TraceID()
	for _, n := range want {
		require.Equal(t, traceID, byName[n].SpanContext().TraceID(), "%s is in the request's trace", n)
	}
	require.Equal(t, byName["POST /v1/jobs"].SpanContext().SpanID(), byName["StartWorkflow:Job"].Parent().SpanID())
}

// The binary serves its metrics on JOBGATE_METRICS_ADDR, a listener of its
// own: the API's port answers /metrics with 404.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	p := startProcess(t, t.TempDir(), ports, "JOBGATE_EMBEDDED_STORE=memory", "JOBGATE_METRICS_ADDR="+metricsAddr)
	require.Contains(t, p.output.String(), "metrics at http://"+metricsAddr+"/metrics")
	e := processEnv(t, ports.http)
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 1, metricValue(t, string(body), "jobgate_jobs_accepted_total", `kind="sleep"`))

	requireProblem(t, e.do(http.MethodGet, "/metrics", ""), http.StatusNotFound, "no-such-endpoint")
	ready := e.do(http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusOK, ready.StatusCode)
	require.JSONEq(t, `{"status":"ready"}`, string(ready.Body), "readiness says ready and nothing more")
}

// README, "The same jobs in the Temporal Web UI": the saved-view queries
// it prints find a tenant's running job in Temporal's visibility, and the
// job's workflow is of type Job, under the job's id, with the summary the
// README shows (its tenant, "default" there, is the env's here; the kind
// of the second query is the job's).
func TestWebUIQueriesOfTheREADME(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	const heading = "## The same jobs in the Temporal Web UI"
	text := string(b)
	at := strings.Index(text, "\n"+heading+"\n")
	require.GreaterOrEqual(t, at, 0, "README.md has no heading %q", heading)
	text = text[at:]
	block := regexp.MustCompile("(?s)\n```\n(.*?)\n```").FindStringSubmatch(text)
	require.NotNil(t, block, "the section's query block")
	queries := strings.Split(block[1], "\n")
	require.Len(t, queries, 2)
	summary := regexp.MustCompile("with the summary `([^`]+)`").FindStringSubmatch(text)
	require.NotNil(t, summary, "the section shows a job's summary")
	require.Contains(t, summary[1], "tenant default")

	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":60}}`)
	e.waitState(id, job.StateRunning, workerRoundTrip)
	for i, q := range queries {
		q = strings.ReplaceAll(q, `"default"`, strconv.Quote(e.Tenant))
		q = strings.ReplaceAll(q, `"http.request"`, `"sleep"`)
		require.NotEqual(t, queries[i], q, "the query names the tenant")
		eventually(t, 30*time.Second, "the README's query "+queries[i]+" finds the running job", func() bool {
			return e.countWorkflows(q) == 1
		})
	}
	desc, err := e.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
	require.NoError(t, err)
	require.Equal(t, "Job", desc.GetWorkflowExecutionInfo().GetType().GetName())
	require.Equal(t, id, desc.GetWorkflowExecutionInfo().GetExecution().GetWorkflowId())
	var got string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &got))
	require.Equal(t, strings.Replace(summary[1], "tenant default", "tenant "+e.Tenant, 1), got)
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
}
