// Package e2e tests jobgate end to end: real HTTP against the API, backed by
// a real Temporal server running in this process (the project's devserver
// on in-memory SQLite), with real workers.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/app"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/webhook"
	"github.com/jobgate/jobgate/workflows"
)

// temporalServer is the one in-process Temporal server of this test binary;
// each env gets its own task queue on it, so tests do not see each other's
// workers.
var temporalServer *devserver.Server

func TestMain(m *testing.M) {
	srv, err := devserver.Start(devserver.Options{
		LogLevel:         "none",
		UnfairTaskQueues: []string{unfairTaskQueue},
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Temporal:", err)
		os.Exit(1)
	}
	temporalServer = srv
	code := m.Run()
	_ = srv.Stop()
	os.Exit(code)
}

// env is one jobgate deployment under test: an API on a real HTTP server
// and, unless asked otherwise, a worker.
type env struct {
	t         testing.TB
	URL       string
	HTTP      *http.Client
	Temporal  client.Client
	TaskQueue string
	// Tenant is this env's own tenant, so listings see only its jobs.
	Tenant string
	// Blobs is the env's blob storage, in a temporary directory.
	Blobs *blob.Store
	// WebhookSecret signs the webhooks of Tenant.
	WebhookSecret string
	// MetricsURL is the base URL of the metrics listener (envOptions.metrics).
	MetricsURL string
	// Secret is the deployment secret that keys the env's job ids of
	// Idempotency-Keys.
	Secret []byte

	process *app.Process
}

// kinds are the env's job kinds.
func (e *env) kinds() *job.Registry { return e.process.Kinds() }

type envOptions struct {
	noWorker     bool
	allowPrivate bool
	resultTTL    time.Duration
	maxBody      int64
	publicURL    string
	proxies      []netip.Prefix
	dialOptions  []grpc.DialOption
	// apiDialOptions, when set, give the API a Temporal client of its
	// own, dialled with them (the worker keeps the env's client), so a
	// test can see the API's calls alone.
	apiDialOptions []grpc.DialOption
	// maxResponseBytes caps an outbound response, headers and body (0:
	// the default, 1 MiB).
	maxResponseBytes int64
	// maxBatchResultBytes caps a batch's items' results together (0: the
	// default, 32 MiB).
	maxBatchResultBytes int64
	// blobQuota, when set, is each tenant's blob storage quota in bytes.
	blobQuota int64
	// requireKey makes the Idempotency-Key mandatory.
	requireKey bool
	// metrics serves the env's /metrics at MetricsURL, a listener of its
	// own (JOBGATE_METRICS_ADDR).
	metrics bool
	// tracer, when set, traces HTTP, workflows and activities.
	tracer trace.TracerProvider
	// apiKeys maps tenants to their API keys; empty is local mode.
	apiKeys    map[string]string
	limits     httpapi.Limits
	maxBacklog int64
	// callTimeout is JOBGATE_TEMPORAL_CALL_TIMEOUT (0: 15 s, see mustStartEnv).
	callTimeout time.Duration
	// temporalAddress points the env at another Temporal server than the
	// shared one.
	temporalAddress string
	namespace       string
	taskQueue       string
	logs            io.Writer
	// kinds are registered besides the built-in ones.
	kinds []job.Kind
	// allResultsToBlobs sends every result to blob storage (otherwise
	// those over activities.DefaultResultBlobThreshold go there).
	allResultsToBlobs bool
	// webhookSecrets are the signing secrets by tenant; nil gives the
	// env's tenant a new one.
	webhookSecrets map[string]string
	// watchInterval is the API's look-up interval of watched jobs (0: the
	// default).
	watchInterval time.Duration
	// watchRate bounds the API's look-ups of all watched jobs per second
	// (0: no bound); watchMaxInterval caps a quiet job's interval (0: the
	// default).
	watchRate        float64
	watchMaxInterval time.Duration
	// workerSlots bounds the jobs the env's worker runs at once (0: the
	// default).
	workerSlots int
	// maxSchedules caps each tenant's schedules (0: no cap).
	maxSchedules int
	// now is the API's clock (nil: time.Now).
	now func() time.Time
}

var queueSeq atomic.Int64

// mustStartEnv starts an env, a jobgate process started as cmd/jobgate
// starts one (app.StartWith), and stops it when the test ends. The env's
// options are the JOBGATE_* variables an operator would set; only what
// no operator sets (gRPC dial options, the clock, the tracer, the logs,
// the local tenant, the watch interval) goes in app.Options.
func mustStartEnv(tb testing.TB, opts envOptions) *env {
	tb.Helper()
	address, namespace := temporalServer.FrontendAddress(), temporalServer.Namespace()
	if opts.temporalAddress != "" {
		address, namespace = opts.temporalAddress, opts.namespace
	}
	queue := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), queueSeq.Add(1))
	if opts.taskQueue != "" {
		queue = opts.taskQueue
	}
	secrets := opts.webhookSecrets
	if secrets == nil {
		secrets = map[string]string{queue: webhook.NewSecret()}
	}
	var secretEntries []string
	for tenant, secret := range secrets {
		secretEntries = append(secretEntries, tenant+":"+secret)
	}
	var keys []string
	for tenant, key := range opts.apiKeys {
		sum := sha256.Sum256([]byte(key))
		keys = append(keys, tenant+":"+hex.EncodeToString(sum[:]))
	}
	var proxies []string
	for _, p := range opts.proxies {
		proxies = append(proxies, p.String())
	}
	secret := webhook.NewSecret()
	vars := map[string]string{
		"JOBGATE_HTTP_ADDR":               "127.0.0.1:0",
		"JOBGATE_TEMPORAL_ADDRESS":        address,
		"JOBGATE_TEMPORAL_NAMESPACE":      namespace,
		"JOBGATE_TASK_QUEUE":              queue,
		"JOBGATE_DATA_DIR":                tb.TempDir(),
		"JOBGATE_BLOB_URL":                "file://" + filepath.ToSlash(tb.TempDir()),
		"JOBGATE_DEPLOYMENT_SECRET":       secret,
		"JOBGATE_WEBHOOK_SECRETS":         strings.Join(secretEntries, ","),
		"JOBGATE_API_KEYS":                strings.Join(keys, ","),
		"JOBGATE_TRUSTED_PROXIES":         strings.Join(proxies, ","),
		"JOBGATE_PUBLIC_URL":              opts.publicURL,
		"JOBGATE_METRICS_ADDR":            "off",
		"JOBGATE_ALLOW_PRIVATE_TARGETS":   strconv.FormatBool(opts.allowPrivate),
		"JOBGATE_REQUIRE_IDEMPOTENCY_KEY": strconv.FormatBool(opts.requireKey),
		// Unless a test sets them, no limits (0), not an operator's
		// defaults: tests submit fast and many.
		"JOBGATE_RATE_LIMIT":        strconv.FormatFloat(opts.limits.Rate, 'g', -1, 64),
		"JOBGATE_RATE_BURST":        strconv.Itoa(opts.limits.Burst),
		"JOBGATE_MAX_ACTIVE_JOBS":   strconv.Itoa(opts.limits.MaxActive),
		"JOBGATE_MAX_STREAMS":       strconv.Itoa(opts.limits.MaxStreams),
		"JOBGATE_TENANT_BLOB_QUOTA": strconv.FormatInt(opts.blobQuota, 10),
		"JOBGATE_MAX_BACKLOG":       strconv.FormatInt(opts.maxBacklog, 10),
		"JOBGATE_MAX_SCHEDULES":     strconv.Itoa(opts.maxSchedules),
		"JOBGATE_WATCH_RATE":        strconv.FormatFloat(opts.watchRate, 'g', -1, 64),
	}
	if opts.noWorker {
		vars["JOBGATE_ROLE"] = "api"
	}
	if opts.metrics {
		vars["JOBGATE_METRICS_ADDR"] = "127.0.0.1:0"
	}
	if opts.allResultsToBlobs {
		vars["JOBGATE_RESULT_BLOB_THRESHOLD"] = "0"
	}
	// Unless a test sets it (the outage tests do), the deadline of a call
	// to Temporal is generous: on a 2-core machine running every package's
	// tests at once, a start can take longer than the operator's default
	// gives it (5 s, half of it for the start), and a test that checks
	// what a job does must not fail on a 503 the client would retry.
	if opts.callTimeout == 0 {
		opts.callTimeout = 15 * time.Second
	}
	// Unset, these are the operator's defaults.
	for name, d := range map[string]time.Duration{
		"JOBGATE_RESULT_TTL":            opts.resultTTL,
		"JOBGATE_TEMPORAL_CALL_TIMEOUT": opts.callTimeout,
		"JOBGATE_WATCH_MAX_INTERVAL":    opts.watchMaxInterval,
	} {
		if d != 0 {
			vars[name] = d.String()
		}
	}
	for name, n := range map[string]int64{
		"JOBGATE_MAX_BODY_BYTES":         opts.maxBody,
		"JOBGATE_MAX_RESPONSE_BYTES":     opts.maxResponseBytes,
		"JOBGATE_MAX_BATCH_RESULT_BYTES": opts.maxBatchResultBytes,
		"JOBGATE_WORKER_CONCURRENCY":     int64(opts.workerSlots),
	} {
		if n != 0 {
			vars[name] = strconv.FormatInt(n, 10)
		}
	}
	cfg, err := app.LoadConfigFrom(func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
	require.NoError(tb, err)
	// Unless a test reads the logs, they are not even formatted: the
	// Temporal SDK's and every request's lines, in every env of a parallel
	// run, cost CPU the tests' deadlines need.
	logger := slog.New(slog.DiscardHandler)
	if opts.logs != nil {
		logger = slog.New(slog.NewJSONHandler(opts.logs, nil))
	}
	p, err := app.StartWith(context.Background(), cfg, app.Options{
		Logger:          logger,
		Out:             io.Discard,
		DialOptions:     opts.dialOptions,
		APIDialOptions:  opts.apiDialOptions,
		Tracer:          opts.tracer,
		Tenant:          queue,
		Now:             opts.now,
		WatchInterval:   opts.watchInterval,
		EventsKeepAlive: time.Second,
	}, opts.kinds...)
	require.NoError(tb, err)
	tb.Cleanup(p.Close)
	var metricsURL string
	if opts.metrics {
		metricsURL = "http://" + p.MetricsAddr().String()
	}
	return &env{
		MetricsURL: metricsURL,
		t:          tb,
		URL:        "http://" + p.Addr().String(),
		HTTP: &http.Client{
			// Every exchange is held to httpapi/openapi.json (openapi_test.go).
			Transport:     conformTo(tb, nil),
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Temporal:      p.Temporal(),
		TaskQueue:     queue,
		Tenant:        queue,
		Blobs:         p.Blobs(),
		WebhookSecret: secrets[queue],
		Secret:        []byte(secret),
		process:       p,
	}
}

// keyedID is the job id of tenant's Idempotency-Key in this env.
func (e *env) keyedID(tenant, key string) string { return engine.KeyedID(e.Secret, tenant, key) }

// startWorker starts another worker of the env, as a worker process on
// another machine would be; the caller stops it (Stop is idempotent; it is
// also stopped when the test ends).
func (e *env) startWorker() sdkworker.Worker {
	e.t.Helper()
	w, err := e.process.StartWorker()
	require.NoError(e.t, err)
	return w
}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into a map.
func (r response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// do sends a request and fails the test if it gets no answer; header is
// name, value pairs. Goroutines other than the test's use send.
func (e *env) do(method, path string, body string, header ...string) response {
	e.t.Helper()
	resp, err := e.send(method, path, body, header...)
	require.NoError(e.t, err)
	return resp
}

// send is do for goroutines other than the test's: it returns the error
// instead of failing the test.
func (e *env) send(method, path string, body string, header ...string) (response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the body: %w", method, path, err)
	}
	return response{Response: resp, Body: data}, nil
}

// submit POSTs a job and requires a 202; it returns the job's id.
func (e *env) submit(body string, header ...string) (string, response) {
	e.t.Helper()
	resp := e.do(http.MethodPost, "/v1/jobs", body, header...)
	require.Equal(e.t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)
	id, _ := resp.JSON(e.t)["id"].(string)
	require.NotEmpty(e.t, id)
	return id, resp
}

// workerRoundTrip bounds waits that need a worker to pick up and run
// workflow and activity tasks; generous for loaded CI machines.
const workerRoundTrip = 30 * time.Second

// waitState polls a job's status until state, failing after limit.
func (e *env) waitState(id string, state job.State, limit time.Duration) response {
	e.t.Helper()
	var last response
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		last = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
		if last.StatusCode == http.StatusOK && last.JSON(e.t)["state"] == string(state) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("job %s did not reach %s in %s; last answer %d %s", id, state, limit, last.StatusCode, last.Body)
	return last
}

// eventually polls cond every 50ms until it holds, failing after limit.
func eventually(tb testing.TB, limit time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not true after %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countWorkflows counts the workflows Temporal's visibility holds for query.
func (e *env) countWorkflows(query string) int64 {
	e.t.Helper()
	resp, err := e.Temporal.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	require.NoError(e.t, err)
	return resp.GetCount()
}

// goErrors collects the failures of goroutines other than the test's,
// which must not call require (FailNow ends only their own goroutine);
// the test requires none once they have ended.
type goErrors struct {
	mu   sync.Mutex
	errs []error
}

func (g *goErrors) add(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.errs = append(g.errs, err)
}

// requireNone fails the test with every failure collected.
func (g *goErrors) requireNone(tb testing.TB) {
	tb.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	require.NoError(tb, errors.Join(g.errs...))
}

// requireSettledCount requires that visibility holds want workflows for
// query once it has caught up with every start made before the call:
// visibility records starts asynchronously, so a count read right after
// the requests says nothing about what they created. It starts a sentinel
// workflow (on a task queue of its own, so that it matches no query of
// the env), waits until visibility shows it, gives an earlier start
// recorded out of order a moment to reach want, and then requires
// exactly want: a late duplicate fails the test.
func (e *env) requireSettledCount(query string, want int64, msgAndArgs ...any) {
	e.t.Helper()
	id := fmt.Sprintf("sentinel-%d-%d", time.Now().UnixNano(), queueSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                id,
		WorkflowExecutionTimeout: time.Minute,
	}, "VisibilitySentinel")
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = e.Temporal.TerminateWorkflow(context.Background(), id, "", "test over") })
	eventually(e.t, 30*time.Second, "visibility shows the sentinel "+id, func() bool {
		return e.countWorkflows("WorkflowId = '"+id+"'") == 1
	})
	deadline := time.Now().Add(2 * time.Second)
	for e.countWorkflows(query) < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(e.t, want, e.countWorkflows(query), msgAndArgs...)
}

// requireProblem checks that resp is a problem+json answer of the given
// status and type name, and returns it.
func requireProblem(tb testing.TB, resp response, status int, name string) map[string]any {
	tb.Helper()
	require.Equal(tb, status, resp.StatusCode, "body: %s", resp.Body)
	require.Equal(tb, "application/problem+json", resp.Header.Get("Content-Type"))
	p := resp.JSON(tb)
	require.Equal(tb, httpapi.ProblemBase+name, p["type"], "problem: %s", resp.Body)
	require.EqualValues(tb, status, p["status"])
	require.NotEmpty(tb, p["title"])
	require.NotEmpty(tb, p["detail"])
	return p
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	var buf bytes.Buffer
	require.NoError(tb, json.NewEncoder(&buf).Encode(v))
	return buf.String()
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// waitStateAs is waitState for an authenticated tenant.
func (e *env) waitStateAs(id string, state job.State, auth []string) {
	e.t.Helper()
	eventually(e.t, 15*time.Second, "job "+id+" "+string(state), func() bool {
		return e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", auth...).JSON(e.t)["state"] == string(state)
	})
}
