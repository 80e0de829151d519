package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/internal/freeport"
	"github.com/jobgate/jobgate/job"
)

// built is one package's binary, built at most once per test run.
type built struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*built{}
)

// mustBuild builds the main package pkg once per test run and returns the
// binary's path.
func mustBuild(tb testing.TB, pkg string) string {
	tb.Helper()
	buildsMu.Lock()
	b, ok := builds[pkg]
	if !ok {
		b = &built{}
		builds[pkg] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "jobgate-build-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, filepath.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	require.NoError(tb, b.err)
	return b.path
}

// mustBuildBinary builds cmd/jobgate once per test run.
func mustBuildBinary(tb testing.TB) string {
	tb.Helper()
	return mustBuild(tb, "github.com/jobgate/jobgate/cmd/jobgate")
}

// processEnv is an env over the API of a jobgate process the test
// started on port.
func processEnv(tb testing.TB, port int) *env {
	return &env{t: tb, URL: fmt.Sprintf("http://127.0.0.1:%d", port), HTTP: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// process is the jobgate binary running as a subprocess in the all-in-one
// default: embedded Temporal on a SQLite file, worker and API.
type process struct {
	cmd    *exec.Cmd
	output *bytes.Buffer
	done   chan error
}

type processPorts struct{ http, temporal int }

// freeLoopbackPort is a port below the ephemeral range (freeport): the
// process it is for binds it only after the binary is built.
func freeLoopbackPort(tb testing.TB) int { return freeport.Loopback(tb) }

// startProcess runs the binary on dataDir and waits until it is ready.
func startProcess(tb testing.TB, dataDir string, ports processPorts, env ...string) *process {
	tb.Helper()
	cmd := exec.Command(mustBuildBinary(tb))
	cmd.Env = append(os.Environ(),
		"JOBGATE_DATA_DIR="+dataDir,
		"JOBGATE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(ports.http),
		"JOBGATE_EMBEDDED_TEMPORAL_PORT="+strconv.Itoa(ports.temporal),
		"JOBGATE_EMBEDDED_UI_PORT=0",
		// Metrics on a free port, not the HTTP port plus 1000, which
		// another test's process may hold (env may set it).
		"JOBGATE_METRICS_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, env...)
	p := &process{cmd: cmd, output: &bytes.Buffer{}, done: make(chan error, 1)}
	w := &lockedWriter{buf: p.output}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(tb, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("jobgate output:\n%s", w.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports.http)
	eventually(tb, 90*time.Second, "jobgate ready", func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			tb.Fatalf("jobgate exited: %v\n%s", err, w.String())
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type lockedWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// The built binary accepts 20 jobs, is killed with SIGKILL mid-way, starts
// again on the same data directory, and every job still succeeds, each one
// workflow, and its Idempotency-Key still replays it.
func TestDurabilityAcrossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dataDir := t.TempDir()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	first := startProcess(t, dataDir, ports)
	api := processEnv(t, ports.http)

	const n = 20
	ids := make([]string, n)
	for i := range n {
		ids[i], _ = api.submit(`{"kind":"sleep","input":{"seconds":6}}`, "Idempotency-Key", fmt.Sprintf("durable-%d", i))
	}
	// The all-in-one generated its deployment secret in the data directory,
	// and keyed ids are keyed by it: the restart below reads it back, so
	// the replays after it name the same jobs.
	secret, err := os.ReadFile(filepath.Join(dataDir, "deployment-secret"))
	require.NoError(t, err)
	require.Equal(t, engine.KeyedID(bytes.TrimSpace(secret), "default", "durable-0"), ids[0])
	eventually(t, 30*time.Second, "a job running or done", func() bool {
		state := api.do(http.MethodGet, "/v1/jobs/"+ids[0], "").JSON(t)["state"]
		return state == "running" || state == "succeeded"
	})
	succeeded := 0
	for _, id := range ids {
		if api.do(http.MethodGet, "/v1/jobs/"+id, "").StatusCode == http.StatusSeeOther {
			succeeded++
		}
	}
	require.Less(t, succeeded, n, "killed mid-way")
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	<-first.done
	first.done <- nil

	startProcess(t, dataDir, ports)
	for _, id := range ids {
		eventually(t, 90*time.Second, "job "+id+" succeeded after the restart", func() bool {
			return api.do(http.MethodGet, "/v1/jobs/"+id, "").StatusCode == http.StatusSeeOther
		})
		require.JSONEq(t, `{"slept":6}`, string(api.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").Body))
	}
	for i, id := range ids {
		replay := api.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":6}}`, "Idempotency-Key", fmt.Sprintf("durable-%d", i))
		require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
		require.Equal(t, id, replay.JSON(t)["id"])
	}

	c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", ports.temporal), Logger: quietLogger{}})
	require.NoError(t, err)
	defer c.Close()
	count := func(q string) int64 {
		resp, err := c.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		require.NoError(t, err)
		return resp.GetCount()
	}
	// Visibility lags the workflows' own records; the replays above
	// started nothing, and every completion is recorded once all are.
	eventually(t, 30*time.Second, "visibility: all completed", func() bool {
		return count(`WorkflowType = 'Job' AND ExecutionStatus = 'Completed'`) == n
	})
	require.EqualValues(t, n, count(`WorkflowType = 'Job'`), "one workflow per job, none lost or duplicated")
}

// JOBGATE_PPROF_ADDR serves the profiler on a listener of its own, not on
// the API's.
func TestPprofOnItsOwnListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	startProcess(t, t.TempDir(), ports, "JOBGATE_PPROF_ADDR="+pprofAddr)
	api := processEnv(t, ports.http)
	prof, err := http.Get("http://" + pprofAddr + "/debug/pprof/cmdline")
	require.NoError(t, err)
	cmdline, err := io.ReadAll(prof.Body)
	prof.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, prof.StatusCode)
	require.Contains(t, string(cmdline), "jobgate")
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/debug/pprof/cmdline", "").StatusCode, "not on the API's port")
}

// A SIGTERM shuts the binary down cleanly, and a client long-polling a
// running job does not hold the shutdown for its whole wait: it gets its
// answer before the server goes.
func TestShutdownWithALongPollOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	p := startProcess(t, t.TempDir(), ports)
	api := processEnv(t, ports.http)

	running, _ := api.submit(`{"kind":"sleep","input":{"seconds":300}}`)
	api.waitState(running, job.StateRunning, workerRoundTrip)
	polling := make(chan int, 1)
	wrote := make(chan struct{}, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/v1/jobs/"+running, nil)
		req.Header.Set("Prefer", "wait=60")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) {
				select {
				case wrote <- struct{}{}:
				default:
				}
			},
		}))
		resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
		if err != nil {
			polling <- 0
			return
		}
		resp.Body.Close()
		polling <- resp.StatusCode
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll was not sent within 10s")
	}
	time.Sleep(500 * time.Millisecond) // let the server take the long-poll up (a process of its own: nothing to wait on)
	stopping := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		p.done <- err
		require.NoError(t, err, "clean exit on SIGTERM")
	case <-time.After(60 * time.Second):
		t.Fatal("jobgate did not exit within 60s of SIGTERM")
	}
	t.Logf("SIGTERM to exit with a long-poll open: %s", time.Since(stopping))
	require.Less(t, time.Since(stopping), 25*time.Second, "the open long-poll did not hold the shutdown (JOBGATE_SHUTDOWN_TIMEOUT is 30s)")
	require.Equal(t, http.StatusOK, <-polling, "the long-poll got its answer before the server went")
	require.Contains(t, p.output.String(), "jobgate stopped")
}
