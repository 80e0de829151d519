// Package e2e tests jobgate end to end: real HTTP against the API, backed by
// a real Temporal server running in this process (the project's devserver
// on in-memory SQLite), with real workers.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
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

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/metrics"
	"github.com/jobgate/jobgate/tracing"
	"github.com/jobgate/jobgate/webhook"
	"github.com/jobgate/jobgate/worker"
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

	kinds      *job.Registry
	workerOpts worker.Options
}

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
	blobQuota func(tenant string) int64
	// requireKey makes the Idempotency-Key mandatory.
	requireKey bool
	// metrics, when set, collects the env's metrics and serves /metrics at
	// MetricsURL, a listener of its own (as JOBGATE_METRICS_ADDR).
	metrics *metrics.Metrics
	// tracer, when set, traces HTTP, workflows and activities.
	tracer trace.TracerProvider
	// apiKeys maps tenants to their API keys; empty is local mode.
	apiKeys     map[string]string
	limits      httpapi.Limits
	maxBacklog  int64
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
	// secret is the deployment secret (nil: a new random one).
	secret []byte
}

var queueSeq atomic.Int64

// mustStartEnv starts an env and stops it when the test ends.
func mustStartEnv(tb testing.TB, opts envOptions) *env {
	tb.Helper()
	address, namespace := temporalServer.FrontendAddress(), temporalServer.Namespace()
	if opts.temporalAddress != "" {
		address, namespace = opts.temporalAddress, opts.namespace
	}
	clientOpts := client.Options{
		HostPort:          address,
		Namespace:         namespace,
		Logger:            quietLogger{},
		ConnectionOptions: client.ConnectionOptions{DialOptions: opts.dialOptions},
	}
	apiCfg := httpapi.Config{}
	if opts.metrics != nil {
		clientOpts.MetricsHandler = opts.metrics.Temporal()
		apiCfg.Observer = opts.metrics
	}
	if opts.tracer != nil {
		ti, err := tracing.Temporal(opts.tracer)
		require.NoError(tb, err)
		clientOpts.Interceptors = append(clientOpts.Interceptors, ti)
	}
	c, err := client.Dial(clientOpts)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	require.NoError(tb, engine.EnsureSearchAttributes(context.Background(), c, namespace))

	queue := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), queueSeq.Add(1))
	if opts.taskQueue != "" {
		queue = opts.taskQueue
	}
	blobs := mustOpenBlobs(tb)
	if opts.blobQuota != nil {
		blobs.LimitTenants(opts.blobQuota)
	}
	outbound := activities.Outbound{AllowPrivate: opts.allowPrivate, MaxResponseBytes: opts.maxResponseBytes, MaxBatchResultBytes: opts.maxBatchResultBytes}
	reader := engine.New(c, nil, engine.Config{TaskQueue: queue, Namespace: namespace, ResultTTL: opts.resultTTL})
	kinds, err := job.NewRegistry(append(append(activities.Builtin(activities.Deps{Outbound: outbound, Blobs: blobs, Jobs: reader}), flow.Builtin()...), opts.kinds...)...)
	require.NoError(tb, err)
	secrets := opts.webhookSecrets
	if secrets == nil {
		secrets = map[string]string{queue: webhook.NewSecret()}
	}
	workerOpts := worker.Options{
		MaxConcurrentJobs:   opts.workerSlots,
		Blobs:               blobs,
		ResultBlobThreshold: activities.DefaultResultBlobThreshold,
		// Webhooks read statuses through a service of the worker's own
		// (Jobs nil), as in a worker process: not through the API's
		// client, which apiDialOptions may make fail.
		Webhooks: &worker.WebhookOptions{
			Secrets:   secrets,
			Outbound:  outbound,
			ResultTTL: opts.resultTTL,
			Render:    func(j *job.Job) any { return httpapi.NewStatus(j, opts.publicURL) },
		},
	}
	if opts.allResultsToBlobs {
		workerOpts.ResultBlobThreshold = 0
	}
	if !opts.noWorker {
		w := worker.New(c, queue, kinds, workerOpts)
		require.NoError(tb, w.Start())
		tb.Cleanup(w.Stop)
	}
	apiClient := c
	if len(opts.apiDialOptions) > 0 {
		apiOpts := clientOpts
		apiOpts.ConnectionOptions = client.ConnectionOptions{DialOptions: opts.apiDialOptions}
		apiClient, err = client.Dial(apiOpts)
		require.NoError(tb, err)
		tb.Cleanup(apiClient.Close)
	}
	secret := opts.secret
	if secret == nil {
		secret = []byte(webhook.NewSecret())
	}
	jobs := engine.New(apiClient, kinds, engine.Config{
		Secret:        secret,
		TaskQueue:     queue,
		Namespace:     namespace,
		EagerStart:    !opts.noWorker,
		ResultTTL:     opts.resultTTL,
		MaxBacklog:    opts.maxBacklog,
		CallTimeout:   opts.callTimeout,
		Blobs:         blobs,
		WatchInterval: opts.watchInterval,
		Now:           opts.now,
		// The bound and back-off of watched jobs' look-ups.
		WatchRate:        opts.watchRate,
		WatchMaxInterval: opts.watchMaxInterval,
	})
	if opts.logs == nil {
		opts.logs = io.Discard
	}
	logger := slog.New(slog.NewJSONHandler(opts.logs, nil))
	var keys []httpapi.APIKey
	for tenant, key := range opts.apiKeys {
		keys = append(keys, httpapi.APIKey{Tenant: tenant, Hash: sha256.Sum256([]byte(key))})
	}
	apiCfg.MaxBodyBytes = opts.maxBody
	apiCfg.RequireIdempotencyKey = opts.requireKey
	apiCfg.Tenant = queue
	apiCfg.PublicURL = opts.publicURL
	apiCfg.TrustedProxies = opts.proxies
	apiCfg.EventsKeepAlive = time.Second
	apiCfg.APIKeys = keys
	apiCfg.Limits = opts.limits
	apiCfg.MaxSchedules = opts.maxSchedules
	apiCfg.WebhookTenants = func(tenant string) bool { _, ok := secrets[tenant]; return ok }
	var api http.Handler = httpapi.New(jobs, kinds, apiCfg, logger)
	if opts.tracer != nil {
		api = tracing.HTTP(api, opts.tracer)
	}
	ts := httptest.NewServer(api)
	tb.Cleanup(ts.Close)
	var metricsURL string
	if opts.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", opts.metrics.Handler())
		ms := httptest.NewServer(mux)
		tb.Cleanup(ms.Close)
		metricsURL = ms.URL
	}
	return &env{
		MetricsURL: metricsURL,
		t:          tb,
		URL:        ts.URL,
		HTTP: &http.Client{
			// Every exchange is held to httpapi/openapi.json (openapi_test.go).
			Transport:     conformTo(tb, nil),
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Temporal:      c,
		TaskQueue:     queue,
		Tenant:        queue,
		Blobs:         blobs,
		WebhookSecret: secrets[queue],
		Secret:        secret,
		kinds:         kinds,
		workerOpts:    workerOpts,
	}
}

// keyedID is the job id of tenant's Idempotency-Key in this env.
func (e *env) keyedID(tenant, key string) string { return engine.KeyedID(e.Secret, tenant, key) }

// mustOpenBlobs opens blob storage in a temporary directory (its String
// is its URL, for another process's view of it).
func mustOpenBlobs(tb testing.TB) *blob.Store {
	tb.Helper()
	blobs, err := blob.Open(context.Background(), "file://"+filepath.ToSlash(tb.TempDir()))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = blobs.Close() })
	return blobs
}

// startWorker starts another worker of the env, as a worker process on
// another machine would be; the caller stops it (Stop is idempotent; it is
// also stopped when the test ends).
func (e *env) startWorker() sdkworker.Worker {
	e.t.Helper()
	w := worker.New(e.Temporal, e.TaskQueue, e.kinds, e.workerOpts)
	require.NoError(e.t, w.Start())
	e.t.Cleanup(w.Stop)
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
