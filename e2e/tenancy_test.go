package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/webhook"
)

const (
	keyA = "ak_live_alpha_5f1c2b7e9d"
	keyB = "ak_live_bravo_8e3d4a6c1f"
)

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// Tenant A cannot read, cancel, list or fetch the result of tenant B's
// jobs: each is a 404. One Idempotency-Key in two tenants is two jobs.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{apiKeys: map[string]string{"alpha": keyA, "bravo": keyB}})

	idB, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`, bearer(keyB)...)
	e.waitStateAs(idB, job.StateSucceeded, bearer(keyB))
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/" + idB},
		{http.MethodGet, "/v1/jobs/" + idB + "/result"},
		{http.MethodDelete, "/v1/jobs/" + idB},
		{http.MethodGet, "/v1/jobs/" + idB + "/events"},
	} {
		requireProblem(t, e.do(req.method, req.path, "", bearer(keyA)...), http.StatusNotFound, "not-found")
	}
	eventually(t, 30*time.Second, "B lists its job", func() bool {
		return strings.Contains(string(e.do(http.MethodGet, "/v1/jobs", "", bearer(keyB)...).Body), idB)
	})
	require.NotContains(t, string(e.do(http.MethodGet, "/v1/jobs", "", bearer(keyA)...).Body), idB)

	body := `{"kind":"sleep","input":{"seconds":0}}`
	a, _ := e.submit(body, append(bearer(keyA), "Idempotency-Key", "shared-key")...)
	b, _ := e.submit(body, append(bearer(keyB), "Idempotency-Key", "shared-key")...)
	require.NotEqual(t, a, b, "the same key in two tenants makes two jobs")
	require.Equal(t, e.keyedID("alpha", "shared-key"), a)
	// And B's replay of the key finds B's job, not A's.
	replay := e.do(http.MethodPost, "/v1/jobs", body, append(bearer(keyB), "Idempotency-Key", "shared-key")...)
	require.Equal(t, b, replay.JSON(t)["id"])
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, apiKeys: map[string]string{"alpha": keyA}})
	for name, header := range map[string][]string{
		"no key":       nil,
		"unknown key":  bearer("ak_live_nobody"),
		"other scheme": {"Authorization", "Basic " + keyA},
		"empty bearer": {"Authorization", "Bearer "},
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.do(http.MethodGet, "/v1/kinds", "", header...)
			requireProblem(t, resp, http.StatusUnauthorized, "unauthorized")
			require.Equal(t, `Bearer realm="jobgate"`, resp.Header.Get("WWW-Authenticate"))
		})
	}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/kinds", "", bearer(keyA)...).StatusCode)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", "").StatusCode, "probes need no key")
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`), http.StatusUnauthorized, "unauthorized")
	e.requireSettledCount(`TaskQueue = '`+e.TaskQueue+`'`, 0, "an unauthenticated submission creates nothing")
}

// A flood of 1,000 requests from one tenant gets 429s with the rate-limit
// headers, while another tenant's requests still succeed.
func TestRateLimitFlood(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, apiKeys: map[string]string{"alpha": keyA, "bravo": keyB}, limits: httpapi.Limits{Rate: 50, Burst: 50}})
	var (
		wg           sync.WaitGroup
		ok, limited  atomic.Int32
		other        atomic.Int32
		sawHeaders   atomic.Bool
		otherFailure atomic.Value
		errs         goErrors
	)
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := e.send(http.MethodGet, "/v1/kinds", "", bearer(keyA)...)
			if err != nil {
				errs.add(err)
				return
			}
			switch resp.StatusCode {
			case http.StatusOK:
				ok.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
				if resp.Header.Get("Retry-After") != "" && strings.HasPrefix(resp.Header.Get("RateLimit-Policy"), `"tenant";q=50;w=1`) &&
					strings.HasPrefix(resp.Header.Get("RateLimit"), `"tenant";r=0;t=`) {
					sawHeaders.Store(true)
				}
			}
			if i%50 == 0 {
				r, err := e.send(http.MethodGet, "/v1/kinds", "", bearer(keyB)...)
				if err != nil {
					errs.add(err)
					return
				}
				if r.StatusCode == http.StatusOK {
					other.Add(1)
				} else {
					otherFailure.Store(r.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	errs.requireNone(t)
	t.Logf("tenant alpha: %d ok, %d limited; tenant bravo: %d of 20 ok", ok.Load(), limited.Load(), other.Load())
	require.Positive(t, limited.Load(), "the flood was limited")
	require.Positive(t, ok.Load())
	require.EqualValues(t, 1000, ok.Load()+limited.Load())
	require.True(t, sawHeaders.Load(), "429s carry Retry-After, RateLimit-Policy and RateLimit")
	require.EqualValues(t, 20, other.Load(), "bravo was never limited (last failure %v)", otherFailure.Load())
}

// A tenant at its cap of active jobs gets 429 for the next submission.
func TestActiveJobCap(t *testing.T) {
	t.Parallel()
	// The API's clock, moved on past the active count's cache.
	var ahead atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e := mustStartEnv(t, envOptions{noWorker: true, limits: httpapi.Limits{MaxActive: 2}, now: now})
	keyed, _ := e.submit(`{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", "at-the-cap")
	e.submit(`{"kind":"sleep","input":{"seconds":1}}`)
	// A retry of an accepted request still gets its job at the cap.
	replay := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", "at-the-cap")
	require.Equal(t, http.StatusAccepted, replay.StatusCode, "body: %s", replay.Body)
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, keyed, replay.JSON(t)["id"])
	overCap := func(what string) {
		t.Helper()
		resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`)
		requireProblem(t, resp, http.StatusTooManyRequests, "too-many-active-jobs")
		require.NotEmpty(t, resp.Header.Get("Retry-After"), what)
		require.Equal(t, `"active-jobs";q=2`, resp.Header.Get("RateLimit-Policy"), what)
		require.Equal(t, `"active-jobs";r=0;t=5`, resp.Header.Get("RateLimit"), what)
	}
	overCap("from the cached count")
	// Past the count's one-second cache the next submission counts again
	// from visibility, which records a start asynchronously; this process's
	// recent acceptances still count, however far behind visibility is.
	ahead.Store(int64(1100 * time.Millisecond))
	overCap("from a fresh count")
	e.requireSettledCount(`TaskQueue = '`+e.TaskQueue+`'`, 2, "the refused submissions created no workflow")
}

// The admission look-ups (the tenant's active-job count and the task
// queue's backlog) are shared: a burst of submissions that all find them
// stale makes one call each to Temporal, not one per submission.
func TestAdmissionLookupsAreShared(t *testing.T) {
	t.Parallel()
	var counts, describes atomic.Int64
	countCalls := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		switch method {
		case workflowservice.WorkflowService_CountWorkflowExecutions_FullMethodName:
			counts.Add(1)
		case workflowservice.WorkflowService_DescribeTaskQueue_FullMethodName:
			describes.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	e := mustStartEnv(t, envOptions{noWorker: true, limits: httpapi.Limits{MaxActive: 1000}, maxBacklog: 1000,
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(countCalls)}})
	const burst = 40
	var (
		wg   sync.WaitGroup
		errs goErrors
	)
	codes := make(chan int, burst)
	began := time.Now()
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.send(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`)
			if err != nil {
				errs.add(err)
				return
			}
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	errs.requireNone(t)
	took := time.Since(began)
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusAccepted, code)
	}
	// Each submission checks both; all but those few that came in the
	// microseconds between finding the cache stale and joining a look-up
	// just landed share one. A burst slower than the caches' life (1 s for
	// the count, 2 s for the backlog, on a loaded machine) may rightly
	// look again.
	t.Logf("%d submissions in %s: %d active-job counts, %d task queue look-ups (2 per backlog reading)", burst, took, counts.Load(), describes.Load())
	again := int64(took / time.Second)
	require.LessOrEqual(t, counts.Load(), 3+3*again, "active-job counts")
	require.LessOrEqual(t, describes.Load(), 2*(3+3*again), "backlog look-ups")
	require.Positive(t, counts.Load())
	require.Positive(t, describes.Load())
}

// Over the configured backlog, submissions get 503 with Retry-After and
// /readyz says not ready.
func TestBacklogOverload(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, maxBacklog: 3})
	// On a loaded machine a submission may also meet a Temporal call that
	// timed out (503 unavailable, with Retry-After too); only the
	// backlog's own answer ends the wait, and nothing else is accepted.
	var last response
	eventually(t, 20*time.Second, "503 overloaded once the backlog is over 3", func() bool {
		last = e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`)
		switch last.StatusCode {
		case http.StatusAccepted:
			return false
		case http.StatusServiceUnavailable:
			if p := last.JSON(t); p["type"] == httpapi.ProblemBase+"unavailable" {
				require.NotEmpty(t, last.Header.Get("Retry-After"))
				return false
			}
			return true
		}
		return true
	})
	requireProblem(t, last, http.StatusServiceUnavailable, "overloaded")
	require.NotEmpty(t, last.Header.Get("Retry-After"))
	requireProblem(t, e.do(http.MethodGet, "/readyz", ""), http.StatusServiceUnavailable, "not-ready")
}

// Concurrent duplicate submissions against two API processes sharing one
// Temporal server and one JOBGATE_DEPLOYMENT_SECRET make exactly one job,
// whose id is the key's under that secret (not the name-based UUID of
// tenant and key alone that earlier versions used).
func TestTwoAPIProcessesMakeOneJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	queue := "two-apis-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	secret := webhook.NewSecret()
	var urls []string
	for range 2 {
		port := freeLoopbackPort(t)
		startAPIProcess(t, port, queue, "JOBGATE_DEPLOYMENT_SECRET="+secret)
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", port))
	}
	const key = "two-apis-one-job"
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = map[string]int{}
		news int
		errs goErrors
	)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api := &env{t: t, URL: urls[i%2], HTTP: &http.Client{Timeout: 10 * time.Second}}
			resp, err := api.send(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", key)
			var accepted struct{ ID string }
			if err == nil && (resp.StatusCode != http.StatusAccepted || json.Unmarshal(resp.Body, &accepted) != nil) {
				err = fmt.Errorf("submission answered %d: %s", resp.StatusCode, resp.Body)
			}
			if err != nil {
				errs.add(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[accepted.ID]++
			if resp.Header.Get("Idempotent-Replayed") == "" {
				news++
			}
		}()
	}
	wg.Wait()
	errs.requireNone(t)
	require.Equal(t, 1, news)
	id := engine.KeyedID([]byte(secret), "default", key)
	require.Equal(t, map[string]int{id: 40}, ids, "every submission got the key's id under the shared secret")
	require.NotEqual(t, engine.KeyedID([]byte(webhook.NewSecret()), "default", key), id, "another secret gives another id")
	require.NotEqual(t, uuid.NewSHA1(uuid.MustParse("6f1b5a52-3c0e-4d8a-9b6a-2f1e0c7d9a41"), []byte("7:default:"+key)).String(), id,
		"not the name-based id earlier versions derived")
	probe := &env{t: t, Temporal: mustStartEnv(t, envOptions{noWorker: true}).Temporal}
	probe.requireSettledCount(`TaskQueue = '`+queue+`'`, 1, "one workflow in all")
}

// startAPIProcess runs the binary in role api against the shared Temporal
// server and waits for /healthz. It returns the process and its output.
func startAPIProcess(t *testing.T, port int, queue string, env ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	return startRoleProcess(t, "api", port, queue, env...)
}

// startRoleProcess runs the binary in role (api or worker) against the
// shared Temporal server, serving HTTP on port, and waits for /healthz.
func startRoleProcess(t *testing.T, role string, port int, queue string, env ...string) (*exec.Cmd, *lockedWriter) {
	t.Helper()
	cmd := exec.Command(mustBuildBinary(t))
	cmd.Env = append(os.Environ(),
		"JOBGATE_ROLE="+role,
		"JOBGATE_TEMPORAL_ADDRESS="+temporalServer.FrontendAddress(),
		"JOBGATE_TEMPORAL_NAMESPACE="+temporalServer.Namespace(),
		"JOBGATE_TASK_QUEUE="+queue,
		"JOBGATE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"JOBGATE_METRICS_ADDR=127.0.0.1:0",
		// One data directory per queue, shared by the test's processes as
		// a volume would be: blob storage and the webhook secret.
		"JOBGATE_DATA_DIR="+sharedDataDir(t, queue),
	)
	cmd.Env = append(cmd.Env, env...)
	w := &lockedWriter{buf: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("jobgate %s output:\n%s", role, w.String())
		}
	})
	eventually(t, 60*time.Second, role+" process serving", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd, w
}

// sharedDataDir is the data directory of the processes serving queue,
// removed when the test ends.
func sharedDataDir(t *testing.T, queue string) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "jobgate-e2e-"+queue)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// No API key, key hash or other secret appears in logs or answers, whether
// the key was right or wrong.
func TestNoSecretsInLogsOrAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	sum := sha256.Sum256([]byte(keyA))
	hash := hex.EncodeToString(sum[:])
	port := freeLoopbackPort(t)
	cmd, out := startAPIProcess(t, port, "secrets-"+strconv.FormatInt(time.Now().UnixNano(), 36),
		"JOBGATE_API_KEYS=alpha:"+hash, "JOBGATE_LOG_LEVEL=debug")
	api := &env{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), HTTP: &http.Client{Timeout: 10 * time.Second}}
	var answers []byte
	for _, key := range []string{keyA, keyA + "x", "wrong-" + keyA} {
		for _, req := range []struct{ method, path, body string }{
			{http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":0}}`},
			{http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":"x"}}`},
			{http.MethodGet, "/v1/jobs/not-a-job", ""},
			{http.MethodGet, "/v1/jobs?cursor=zzz", ""},
		} {
			resp := api.do(req.method, req.path, req.body, bearer(key)...)
			answers = append(answers, resp.Body...)
			for _, vs := range resp.Header {
				answers = append(answers, strings.Join(vs, " ")...)
			}
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	eventually(t, 20*time.Second, "stopped", func() bool { return strings.Contains(out.String(), "jobgate stopped") })
	logs := out.String()
	require.Contains(t, logs, "API keys configured", "the log was captured")
	for _, secret := range []string{keyA, hash, "ak_live"} {
		require.NotContains(t, logs, secret)
		require.NotContains(t, string(answers), secret)
	}
}

// A client that trickles its request headers is disconnected after the
// read-header timeout instead of holding a connection forever.
func TestSlowClientIsCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	port := freeLoopbackPort(t)
	startAPIProcess(t, port, "slow-"+strconv.FormatInt(time.Now().UnixNano(), 36), "JOBGATE_READ_HEADER_TIMEOUT=1s")
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /v1/kinds HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(conn) // ends when the server closes the connection
	require.NoError(t, err, "the server closed the connection before our own deadline")
	require.Less(t, time.Since(start), 8*time.Second)
}
