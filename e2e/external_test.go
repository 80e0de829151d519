package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
)

// goWorkerPackage is the external worker of the docs, a main package that
// imports only the Temporal SDK.
const goWorkerPackage = "github.com/jobgate/jobgate/examples/external/goworker"

// TestExternalWorkerImportsNoJobgate: the Go worker of docs/kinds.md
// shares no code with jobgate, as a worker in another language cannot.
func TestExternalWorkerImportsNoJobgate(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", goWorkerPackage).CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "go.temporal.io/sdk/workflow")
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/jobgate/jobgate") && dep != goWorkerPackage {
			t.Errorf("the external Go worker imports jobgate's %s", dep)
		}
	}
}

// workerProcess is an external worker running as a process of its own.
type workerProcess struct {
	t     *testing.T
	c     client.Client
	argv  []string
	dir   string
	queue string
	cmd   *exec.Cmd
}

func newWorkerProcess(t *testing.T, c client.Client, queue, dir string, argv ...string) *workerProcess {
	w := &workerProcess{t: t, c: c, argv: argv, dir: dir, queue: queue}
	t.Cleanup(func() {
		if w.cmd != nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	})
	return w
}

// mustBuildGoWorker builds the external Go worker (once per test run) and
// returns a process of it for queue.
func mustBuildGoWorker(t *testing.T, c client.Client, queue string) *workerProcess {
	t.Helper()
	return newWorkerProcess(t, c, queue, "", mustBuild(t, goWorkerPackage))
}

func (w *workerProcess) start() {
	w.t.Helper()
	cmd := exec.Command(w.argv[0], w.argv[1:]...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+temporalServer.FrontendAddress(),
		"TEMPORAL_NAMESPACE="+temporalServer.Namespace(),
		"TASK_QUEUE="+w.queue)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(w.t, cmd.Start())
	w.cmd = cmd
	// Polling, so that what needs the worker at once (an Update) finds
	// it: a TypeScript worker bundles its workflows first. SDKs name a
	// poller "<pid>@<host>…".
	identity := fmt.Sprintf("%d@", cmd.Process.Pid)
	eventually(w.t, time.Minute, "the worker polls "+w.queue, func() bool {
		resp, err := w.c.DescribeTaskQueue(context.Background(), w.queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
		require.NoError(w.t, err)
		for _, p := range resp.GetPollers() {
			if strings.HasPrefix(p.GetIdentity(), identity) {
				return true
			}
		}
		return false
	})
}

// stop stops the worker as its operator would (SIGTERM), and waits for it.
func (w *workerProcess) stop() {
	w.t.Helper()
	require.NoError(w.t, w.cmd.Process.Signal(syscall.SIGTERM))
	_ = w.cmd.Wait()
	w.cmd = nil
}

// mustLoadExampleKinds loads docs' kinds file, with its task queue renamed
// to queue so that this test's worker is the only one on it, plus a kind
// whose task queue no worker polls.
func mustLoadExampleKinds(t *testing.T, queue, idleQueue string) []job.Kind {
	t.Helper()
	kinds, err := external.Load(filepath.Join("..", "examples", "external", "kinds.json"), nil, "")
	require.NoError(t, err)
	for _, k := range kinds {
		ext, _ := external.Of(k)
		ext.TaskQueue = queue
	}
	idle, err := external.Parse("inline", []byte(fmt.Sprintf(
		`{"kinds": [{"name": "report.nobody", "workflowType": "BuildReport", "taskQueue": %q, "expectedSeconds": 1}]}`, idleQueue)), nil, "")
	require.NoError(t, err)
	return append(kinds, idle...)
}

// TestExternalKind runs the example kind "report.build" on the external Go
// worker, a separate process on its own task queue, through jobgate's
// whole contract.
func TestExternalKind(t *testing.T) {
	stamp := time.Now().UnixNano()
	queue, idleQueue := fmt.Sprintf("reports-%d", stamp), fmt.Sprintf("nobody-%d", stamp)
	logs := &lockedWriter{buf: &bytes.Buffer{}}
	e := mustStartEnv(t, envOptions{kinds: mustLoadExampleKinds(t, queue, idleQueue), allowPrivate: true, logs: logs})
	w := mustBuildGoWorker(t, e.Temporal, queue)
	w.start()

	t.Run("kinds lists it", func(t *testing.T) {
		body := e.do(http.MethodGet, "/v1/kinds", "").JSON(t)
		var found map[string]any
		for _, k := range body["kinds"].([]any) {
			if k := k.(map[string]any); k["name"] == "report.build" {
				found = k
			}
		}
		require.NotNil(t, found)
		require.Equal(t, "about 5 s", found["expectedDuration"])
		require.Equal(t, true, found["workflow"])
		require.Equal(t, "approve", found["inputs"].([]any)[0].(map[string]any)["name"])
		schema := found["inputSchema"].(map[string]any)
		require.Equal(t, []any{"pages"}, schema["required"])
	})

	t.Run("input schema enforced before acceptance", func(t *testing.T) {
		resp := e.do(http.MethodPost, "/v1/jobs", `{"kind": "report.build", "input": {"pages": 0}}`)
		requireProblem(t, resp, http.StatusUnprocessableEntity, "invalid-input")
	})

	approved := checkReportKind(t, e, w, queue)

	t.Run("terminated from Temporal is canceled", func(t *testing.T) {
		id, _ := e.submit(`{"kind": "report.build", "input": {"pages": 600}}`)
		e.waitState(id, job.StateRunning, workerRoundTrip)
		require.NoError(t, e.Temporal.TerminateWorkflow(context.Background(), id, "", "operator"))
		status := e.waitState(id, job.StateCanceled, workerRoundTrip).JSON(t)
		require.Contains(t, status["error"].(map[string]any)["detail"], "terminated")
	})

	t.Run("webhook on completion", func(t *testing.T) {
		rc := mustStartReceiver(t, http.StatusOK)
		id, _ := e.submit(fmt.Sprintf(`{"kind": "report.build", "input": {"pages": 1}, "callbackUrl": %q}`, rc.URL))
		e.waitState(id, job.StateSucceeded, workerRoundTrip)
		e.callbackOf(id, job.CallbackDelivered, workerRoundTrip)
		got := rc.deliveries()
		require.Len(t, got, 1)
		var hook map[string]any
		require.NoError(t, jsonUnmarshal(string(got[0].body), &hook))
		require.Equal(t, "job.succeeded", hook["type"])
		require.Equal(t, id, hook["data"].(map[string]any)["id"])
	})

	t.Run("listing", func(t *testing.T) {
		eventually(t, workerRoundTrip, "the listing shows the approved job", func() bool {
			body := e.do(http.MethodGet, "/v1/jobs?kind=report.build&state=succeeded&limit=100", "").JSON(t)
			for _, j := range body["jobs"].([]any) {
				if j.(map[string]any)["id"] == approved {
					return true
				}
			}
			return false
		})
	})

	t.Run("a worker that never comes", func(t *testing.T) {
		id, resp := e.submit(`{"kind": "report.nobody", "input": {"pages": 1}}`)
		require.Equal(t, "queued", resp.JSON(t)["state"])
		ready := e.do(http.MethodGet, "/readyz", "")
		p := requireProblem(t, ready, http.StatusServiceUnavailable, "not-ready")
		// The answer names no queue; the log says which one is idle.
		require.NotContains(t, p["detail"], idleQueue)
		require.Contains(t, logs.String(), idleQueue)
		require.NotContains(t, logs.String(), queue+`\"`)
		// Nothing polls its queue: it stays queued, read after read.
		for range 5 {
			require.Equal(t, "queued", e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)["state"])
			time.Sleep(200 * time.Millisecond)
		}
		resp = e.do(http.MethodDelete, "/v1/jobs/"+id, "")
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)
	})
}

// checkReportKind runs the example kind report.build on worker w (Go or
// TypeScript), serving queue: submission with a key and its replay,
// progress and waits (also with the worker stopped), an input refused by
// the workflow's validator and one taken, the result, a failure, and a
// cancellation. It returns the id of the job that succeeded.
func checkReportKind(t *testing.T, e *env, w *workerProcess, queue string) string {
	var approved string
	t.Run("submit, progress, input, result", func(t *testing.T) {
		body := `{"kind": "report.build", "input": {"pages": 2, "approval": true}}`
		id, resp := e.submit(body, "Idempotency-Key", "report-1")
		approved = id
		require.Equal(t, "/v1/jobs/"+id, resp.Header.Get("Location"))
		require.NotEmpty(t, resp.Header.Get("Retry-After"))
		replay := e.do(http.MethodPost, "/v1/jobs", body, "Idempotency-Key", "report-1")
		require.Equal(t, http.StatusAccepted, replay.StatusCode)
		require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
		require.Equal(t, "/v1/jobs/"+id, replay.Header.Get("Location"))

		// The workflow started on the kind's own task queue, as the kind's
		// workflow type, under the job's id.
		desc, err := e.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
		require.NoError(t, err)
		require.Equal(t, "BuildReport", desc.GetWorkflowExecutionInfo().GetType().GetName())
		require.Equal(t, queue, desc.GetWorkflowExecutionInfo().GetTaskQueue())

		var status map[string]any
		eventually(t, workerRoundTrip, "the job waits for approval", func() bool {
			status = e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
			waiting, _ := status["waitingFor"].([]any)
			return status["state"] == "running" && len(waiting) == 1
		})
		require.Equal(t, "approve", status["waitingFor"].([]any)[0].(map[string]any)["name"])
		require.Equal(t, "waiting for approval", status["progress"].(map[string]any)["message"])

		// With the worker stopped, Temporal's record still answers.
		w.stop()
		status = e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
		require.Equal(t, "running", status["state"])
		require.Equal(t, "waiting for approval", status["progress"].(map[string]any)["message"])
		require.Len(t, status["waitingFor"], 1)
		w.start()

		// The workflow's validator refuses an approval without a name: 422.
		resp = e.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approve", `{"by": " "}`)
		p := requireProblem(t, resp, http.StatusUnprocessableEntity, "input-rejected")
		require.Contains(t, fmt.Sprint(p), "approver's name")
		// Its schema refuses another body before it reaches the workflow.
		resp = e.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approve", `{"who": "ada"}`)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "body: %s", resp.Body)
		resp = e.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approve", `{"by": "ada"}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)

		done := e.waitState(id, job.StateSucceeded, workerRoundTrip)
		require.Empty(t, done.JSON(t)["waitingFor"])
		require.Equal(t, "done", done.JSON(t)["progress"].(map[string]any)["message"])
		require.NotEmpty(t, done.JSON(t)["startedAt"])
		result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
		require.Equal(t, http.StatusOK, result.StatusCode, "body: %s", result.Body)
		require.JSONEq(t, fmt.Sprintf(`{"pages": 2, "approvedBy": "ada", "url": "https://reports.example/%s.pdf"}`, id), string(result.Body))

		// A replay of the finished job answers it, still.
		replay = e.do(http.MethodPost, "/v1/jobs", body, "Idempotency-Key", "report-1")
		require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
		require.Equal(t, "succeeded", replay.JSON(t)["state"])
	})

	t.Run("failure", func(t *testing.T) {
		id, _ := e.submit(`{"kind": "report.build", "input": {"pages": 3, "fail": true}}`)
		status := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
		failure := status["error"].(map[string]any)
		require.Equal(t, "page 1 could not be written", failure["detail"], "error: %v", failure)
		require.Contains(t, failure["title"], "report-failed")
	})

	t.Run("cancel reaches the workflow", func(t *testing.T) {
		id, _ := e.submit(`{"kind": "report.build", "input": {"pages": 600}}`)
		eventually(t, workerRoundTrip, "the job writes pages", func() bool {
			s := e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
			p, _ := s["progress"].(map[string]any)
			return s["state"] == "running" && p != nil && strings.HasPrefix(fmt.Sprint(p["message"]), "writing page")
		})
		resp := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)
		status := e.waitState(id, job.StateCanceled, workerRoundTrip).JSON(t)
		// The workflow saw the cancellation and said so before ending
		// canceled (not terminated).
		require.Contains(t, status["progress"].(map[string]any)["message"], "canceled after")
		desc, err := e.Temporal.DescribeWorkflowExecution(context.Background(), id, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, desc.GetWorkflowExecutionInfo().GetStatus())
	})

	return approved
}

// TestExternalKindTypeScript runs the same kind on the TypeScript worker of
// docs/kinds.md (examples/external/tsworker), when its packages are
// installed (npm install there; CI may do it).
func TestExternalKindTypeScript(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "examples", "external", "tsworker"))
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@temporalio", "worker")); err != nil {
		t.Skip("the TypeScript worker's packages are not installed: run npm install in examples/external/tsworker to run this test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	stamp := time.Now().UnixNano()
	queue := fmt.Sprintf("reports-ts-%d", stamp)
	e := mustStartEnv(t, envOptions{kinds: mustLoadExampleKinds(t, queue, fmt.Sprintf("nobody-ts-%d", stamp))})
	w := newWorkerProcess(t, e.Temporal, queue, dir, node, "lib/worker.js")
	out, err := exec.Command(filepath.Join(dir, "node_modules", ".bin", "tsc"), "-p", dir).CombinedOutput()
	require.NoError(t, err, "compile the TypeScript worker: %s", out)
	w.start()
	checkReportKind(t, e, w, queue)
}

// TestExternalKindBacklog: each task queue is held to the backlog limit on
// its own: an external kind whose workers are missing is refused (503)
// once its queue is too deep, while jobgate's own kinds are still accepted.
func TestExternalKindBacklog(t *testing.T) {
	stamp := time.Now().UnixNano()
	e := mustStartEnv(t, envOptions{maxBacklog: 2,
		kinds: mustLoadExampleKinds(t, fmt.Sprintf("reports-b-%d", stamp), fmt.Sprintf("nobody-b-%d", stamp))})
	eventually(t, workerRoundTrip, "the idle queue's backlog refuses its kind", func() bool {
		resp := e.do(http.MethodPost, "/v1/jobs", `{"kind": "report.nobody", "input": {}}`)
		if resp.StatusCode == http.StatusAccepted {
			return false
		}
		requireProblem(t, resp, http.StatusServiceUnavailable, "overloaded")
		return true
	})
	e.submit(`{"kind": "sleep", "input": {"seconds": 0}}`)
}
