package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/metrics"
	"github.com/jobgate/jobgate/tracing"
	"github.com/jobgate/jobgate/worker"
)

// Process is one running jobgate: what its configuration's role needs,
// started in dependency order by Start and stopped in reverse by Close
// (the model is wtf's Main type). cmd/jobgate runs one through Main; a
// test or a custom binary starts its own with Start or StartWith (the
// e2e tests start every deployment they test this way).
type Process struct {
	cfg    Config
	opts   Options
	logger *slog.Logger
	// shutdown stops what has started, called in reverse.
	shutdown []func(context.Context)
	// failed receives the HTTP server's failure.
	failed chan error

	out io.Writer
	// reserved are the listeners outbound requests never reach, filled
	// as they start.
	reserved *activities.Reserved
	blobs    *blob.Store
	secrets  webhookSecrets
	// deploymentSecret keys job ids and signs cursors (API roles only).
	deploymentSecret []byte
	// extra are the caller's kinds, declared those of JOBGATE_KINDS_FILE.
	extra, declared []job.Kind
	kinds           *job.Registry
	temporal        string // the Temporal frontend's address
	metrics         *metrics.Metrics
	tracer          trace.TracerProvider
	// interceptors trace the Temporal client's calls.
	interceptors []interceptor.ClientInterceptor
	client       client.Client
	// apiClient is the API's Temporal client: client, unless
	// Options.APIDialOptions gave the API its own.
	apiClient client.Client
	jobs      *engine.Service
	// workerJobs is what the worker's webhooks read statuses through:
	// jobs, or with an API client of its own a service on client.
	workerJobs  worker.Jobs
	workerOpts  worker.Options
	traced      bool
	api         net.Listener
	metricsAddr net.Addr
}

// LoadConfig reads and checks the configuration from the JOBGATE_*
// environment variables, for Start; it returns what is wrong with them.
func LoadConfig() (Config, error) { return loadConfig() }

// LoadConfigFrom is LoadConfig from the JOBGATE_* variables lookup finds
// instead of the environment, by envconfig's rules (TestReadEnvIsEnvconfig
// holds them to envconfig.Process), for a test or a custom binary that
// configures a Process as an operator would.
func LoadConfigFrom(lookup func(name string) (value string, set bool)) (Config, error) {
	return loadConfigFrom(lookup)
}

// Options are what a test, or a custom binary that runs jobgate beside
// other things, gives a Process besides its Config: what no operator
// sets. Everything an operator sets is in Config. The zero Options is
// cmd/jobgate's.
type Options struct {
	// Logger receives the process's logs, the Temporal SDK's included
	// (nil: JSON on stderr at JOBGATE_LOG_LEVEL).
	Logger *slog.Logger
	// Out receives the lines cmd/jobgate prints at start-up (nil:
	// stdout).
	Out io.Writer
	// DialOptions are added to the gRPC dial of the Temporal client.
	DialOptions []grpc.DialOption
	// APIDialOptions, when set, give the API a Temporal client of its
	// own, dialled with them instead of DialOptions. The worker, the
	// export kind and webhooks keep the process's client, as an API and
	// a worker process would each have their own.
	APIDialOptions []grpc.DialOption
	// Tracer traces HTTP requests, Temporal calls, workflows and
	// activities, in place of an OTLP exporter to JOBGATE_OTLP_ENDPOINT
	// (nil: that exporter when it is set, otherwise no tracing).
	Tracer trace.TracerProvider
	// Tenant is the tenant of local mode, without API keys (empty:
	// "default"); its webhook secret is generated when none is
	// configured.
	Tenant string
	// Now is the API's clock (nil: time.Now).
	Now func() time.Time
	// WatchInterval is how often a watched job is looked up after a
	// change (0: 250ms; it backs off to JOBGATE_WATCH_MAX_INTERVAL).
	WatchInterval time.Duration
	// EventsKeepAlive is how often an idle event stream sends a comment
	// (0: 15s).
	EventsKeepAlive time.Duration
}

// Start starts jobgate as cfg (from LoadConfig) says, with the built-in
// kinds and extra ones, and returns once it serves. ctx bounds the
// start-up only. It returns configuration and start-up errors, having
// stopped what it started; a kind whose name is taken is one.
func Start(ctx context.Context, cfg Config, extra ...job.Kind) (*Process, error) {
	return StartWith(ctx, cfg, Options{}, extra...)
}

// StartWith is Start with opts: for tests and custom binaries.
func StartWith(ctx context.Context, cfg Config, opts Options, extra ...job.Kind) (*Process, error) {
	p := &Process{cfg: cfg, opts: opts, logger: opts.Logger, out: opts.Out, failed: make(chan error, 1), tracer: noop.NewTracerProvider(),
		reserved: &activities.Reserved{}, extra: extra}
	if p.logger == nil {
		p.logger = newLogger(cfg.LogLevel)
	}
	if p.out == nil {
		p.out = os.Stdout
	}
	if p.opts.Tenant == "" {
		p.opts.Tenant = "default"
	}
	steps := []func(context.Context) error{
		p.lockDataDir,
		p.openBlobs,
		p.loadSecrets,
		p.loadKindsFile,
		p.startPprof,
		p.listenAPI,
		p.startTemporal,
		p.startObservability,
		p.dialTemporal,
		p.buildKinds,
		p.newJobService,
		p.startWorker,
		p.serveHTTP,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.logger.Info("jobgate started", "role", cfg.Role, "temporal", p.temporal, "namespace", cfg.TemporalNamespace)
	return p, nil
}

// Close stops the process in the reverse order of its start, within the
// configured shutdown timeout: no new requests, in-flight ones finished,
// then the worker, Temporal's client and the embedded server.
func (p *Process) Close() {
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	for i := len(p.shutdown) - 1; i >= 0; i-- {
		p.shutdown[i](sctx)
	}
	p.shutdown = nil
	p.logger.Info("jobgate stopped")
}

// Failed receives the error of an HTTP server that stopped serving; the
// process should then be closed.
func (p *Process) Failed() <-chan error { return p.failed }

// Addr is the address the API (or a worker's health probes) listens on.
func (p *Process) Addr() net.Addr { return p.api.Addr() }

// TemporalAddress is the Temporal frontend the process uses: the
// configured one, or the embedded server's.
func (p *Process) TemporalAddress() string { return p.temporal }

// Jobs is the process's job service, the API's.
func (p *Process) Jobs() *engine.Service { return p.jobs }

// Temporal is the process's Temporal client (the worker's, when
// Options.APIDialOptions gave the API its own).
func (p *Process) Temporal() client.Client { return p.client }

// Kinds are the process's job kinds.
func (p *Process) Kinds() *job.Registry { return p.kinds }

// Blobs is the process's blob storage.
func (p *Process) Blobs() *blob.Store { return p.blobs }

// MetricsAddr is the address of the metrics listener, nil without one.
func (p *Process) MetricsAddr() net.Addr { return p.metricsAddr }

// StartWorker starts another worker as the process's own is (on its
// client and task queue, with its kinds and options), as a worker
// process elsewhere would be. The caller stops it; Close stops it too.
func (p *Process) StartWorker() (sdkworker.Worker, error) {
	w := worker.New(p.client, p.cfg.TaskQueue, p.kinds, p.workerOpts)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker on task queue %q: %w", p.cfg.TaskQueue, err)
	}
	p.onStop(func(context.Context) { w.Stop() })
	return w, nil
}

func (p *Process) onStop(f func(context.Context)) { p.shutdown = append(p.shutdown, f) }

// lockDataDir allows one embedded server per data directory: a second one
// fails here, at once and naming the holder, rather than on SQLite's lock.
func (p *Process) lockDataDir(context.Context) error {
	if !p.cfg.embedded() || p.cfg.EmbeddedStore != "file" {
		return nil
	}
	release, err := lockDataDir(p.cfg.DataDir)
	if err != nil {
		return err
	}
	p.onStop(func(context.Context) { release() })
	return nil
}

// openBlobs opens blob storage, closed last.
func (p *Process) openBlobs(ctx context.Context) error {
	blobs, err := openBlobs(ctx, p.cfg, p.out)
	if err != nil {
		return err
	}
	p.blobs = blobs
	p.onStop(func(context.Context) {
		if err := blobs.Close(); err != nil {
			p.logger.Warn("closing blob storage", "error", err)
		}
	})
	return nil
}

// loadSecrets loads the webhook signing secrets and, for API roles, the
// deployment secret.
func (p *Process) loadSecrets(context.Context) error {
	var err error
	if p.secrets, err = loadWebhookSecrets(p.cfg, p.opts.Tenant, p.out); err != nil {
		return err
	}
	if p.cfg.runsAPI() {
		p.deploymentSecret, err = loadDeploymentSecret(p.cfg, p.out)
	}
	return err
}

// loadKindsFile reads the kinds of JOBGATE_KINDS_FILE before anything
// listens or connects: a bad file stops start-up at once. The built-in
// kinds are named here without their dependencies (which need Temporal):
// only their names are checked against.
func (p *Process) loadKindsFile(context.Context) error {
	taken := p.kindsWith(activities.Deps{})
	if p.cfg.KindsFile != "" {
		var err error
		if p.declared, err = external.Load(p.cfg.KindsFile, taken, p.cfg.TaskQueue); err != nil {
			return err
		}
	}
	// The registry buildKinds makes once Temporal is dialled, built now
	// from the same kinds (the built-in ones without their dependencies):
	// a caller's kind whose name is taken or whose schema does not
	// compile fails start-up before anything listens or connects.
	_, err := job.NewRegistry(append(taken, p.declared...)...)
	return err
}

// startPprof starts the profiler first, to be stopped last: start-up and
// a slow shutdown can be profiled too.
func (p *Process) startPprof(context.Context) error {
	if p.cfg.PprofAddr == "" {
		return nil
	}
	stopPprof, err := servePprof(p.cfg.PprofAddr, p.reserved, p.logger, p.out)
	if err != nil {
		return err
	}
	p.onStop(stopPprof)
	return nil
}

// listenAPI binds the API's port before any job can run, so that no job
// reaches it before it is reserved.
func (p *Process) listenAPI(context.Context) error {
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w (set JOBGATE_HTTP_ADDR to another address)", p.cfg.HTTPAddr, err)
	}
	p.api = ln
	p.onStop(func(context.Context) { _ = ln.Close() })
	return p.reserved.Add(ln.Addr().String())
}

// startTemporal starts the embedded Temporal server when no cluster is
// configured, and reserves Temporal's addresses from outbound requests.
func (p *Process) startTemporal(context.Context) error {
	cfg := p.cfg
	p.temporal = cfg.TemporalAddress
	if !cfg.embedded() {
		if err := p.reserved.Add(p.temporal); err != nil {
			// Temporal's own dial says what is wrong with the address.
			p.logger.Warn("cannot resolve the Temporal address to refuse it to outbound requests", "address", p.temporal, "error", err)
		}
		return nil
	}
	srv, err := startEmbedded(cfg)
	if err != nil {
		return err
	}
	p.onStop(func(context.Context) {
		if err := srv.Stop(); err != nil {
			p.logger.Warn("embedded Temporal server stopped with an error", "error", err)
		}
	})
	p.temporal = srv.FrontendAddress()
	where := cfg.DataDir
	if cfg.embeddedPostgres() {
		where = "PostgreSQL"
	}
	fmt.Fprintf(p.out, "jobgate: embedded Temporal server at %s (namespace %q, data in %s)\n", p.temporal, cfg.TemporalNamespace, where)
	if ui := srv.UIAddress(); ui != "" {
		fmt.Fprintf(p.out, "jobgate: Temporal Web UI at %s\n", ui)
	}
	for _, l := range srv.Listeners() {
		if err := p.reserved.Add(l); err != nil {
			return err
		}
	}
	return nil
}

// startObservability starts the metrics (and their listener, when
// configured) and OTLP tracing.
func (p *Process) startObservability(ctx context.Context) error {
	cfg := p.cfg
	p.metrics = metrics.New()
	m := p.metrics
	p.onStop(func(context.Context) { _ = m.Close() })
	if cfg.metricsAddr != "" {
		stopMetrics, addr, err := serveMetrics(cfg.metricsAddr, m.Handler(), p.reserved, p.logger, p.out)
		if err != nil {
			return err
		}
		p.metricsAddr = addr
		p.onStop(stopMetrics)
	}
	if p.opts.Tracer != nil {
		return p.trace(p.opts.Tracer)
	}
	if cfg.OTLPEndpoint == "" {
		return nil
	}
	sdkTP, stopTracing, err := tracing.NewOTLP(ctx, cfg.OTLPEndpoint, cfg.Role, cfg.OTLPInsecure)
	if err != nil {
		return err
	}
	p.onStop(func(ctx context.Context) { _ = stopTracing(ctx) })
	if err := p.trace(sdkTP); err != nil {
		return err
	}
	p.logger.Info("tracing to OTLP endpoint", "endpoint", cfg.OTLPEndpoint)
	return nil
}

// trace traces HTTP requests, Temporal calls, workflows and activities
// to tp.
func (p *Process) trace(tp trace.TracerProvider) error {
	ti, err := tracing.Temporal(tp)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	p.tracer, p.traced = tp, true
	p.interceptors = append(p.interceptors, ti)
	return nil
}

// dialTemporal connects to Temporal and registers the search attributes.
func (p *Process) dialTemporal(ctx context.Context) error {
	cfg := p.cfg
	tlsConf, credentials, err := temporalTLS(cfg)
	if err != nil {
		return err
	}
	dial := func(dialOptions []grpc.DialOption) (client.Client, error) {
		c, err := client.DialContext(ctx, client.Options{
			Credentials:    credentials,
			MetricsHandler: p.metrics.Temporal(),
			Interceptors:   p.interceptors,
			HostPort:       p.temporal,
			Namespace:      cfg.TemporalNamespace,
			Logger:         sdklog.NewStructuredLogger(p.logger.With("component", "temporal-sdk")),
			ConnectionOptions: client.ConnectionOptions{
				GrpcCompression: grpcCompression(cfg.TemporalCompression, p.temporal),
				TLS:             tlsConf,
				DialOptions:     dialOptions,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("connect to Temporal at %s: %w", p.temporal, explainDialError(cfg, err))
		}
		p.onStop(func(context.Context) { c.Close() })
		return c, nil
	}
	if p.client, err = dial(p.opts.DialOptions); err != nil {
		return err
	}
	p.apiClient = p.client
	if len(p.opts.APIDialOptions) > 0 {
		if p.apiClient, err = dial(p.opts.APIDialOptions); err != nil {
			return err
		}
	}
	return engine.EnsureSearchAttributes(ctx, p.client, cfg.TemporalNamespace)
}

// engineConfig is the job services' configuration.
func (p *Process) engineConfig() engine.Config {
	cfg := p.cfg
	return engine.Config{
		TaskQueue:   cfg.TaskQueue,
		CallTimeout: cfg.TemporalCallTimeout,
		EagerStart:  cfg.runsWorker(),
		ResultTTL:   cfg.ResultTTL,
		Namespace:   cfg.TemporalNamespace,
		MaxBacklog:  cfg.MaxBacklog,
		Blobs:       p.blobs,
		Secret:      p.deploymentSecret,
		// The bound and back-off of watched jobs' look-ups.
		WatchRate:        cfg.WatchRate,
		WatchMaxInterval: cfg.WatchMaxInterval,
		WatchInterval:    p.opts.WatchInterval,
		Now:              p.opts.Now,
	}
}

// buildKinds builds the kinds: the built-in ones, the caller's and those
// of JOBGATE_KINDS_FILE. The export kind lists jobs through a job service
// of its own that only reads (the process's one runs these kinds, so it
// comes after them).
func (p *Process) buildKinds(context.Context) error {
	lcfg := p.engineConfig()
	lcfg.FinishedCacheSize = -1 // it only lists: no finished-job cache
	lister := engine.New(p.client, nil, lcfg)
	deps := activities.Deps{Outbound: outbound(p.cfg, p.reserved), Blobs: p.blobs, Jobs: lister}
	var err error
	p.kinds, err = job.NewRegistry(append(p.kindsWith(deps), p.declared...)...)
	return err
}

// kindsWith is every kind but those of JOBGATE_KINDS_FILE: the built-in
// ones on deps, and the caller's.
func (p *Process) kindsWith(deps activities.Deps) []job.Kind {
	return append(append(activities.Builtin(deps), flow.Builtin()...), p.extra...)
}

// newJobService builds the process's one job service: the API's, and what
// the worker's webhooks read statuses through, with one cache of finished
// jobs and one set of watchers. An API with a Temporal client of its own
// (Options.APIDialOptions) keeps it to itself: the worker's webhooks read
// through a service on the worker's client, as in a worker process.
func (p *Process) newJobService(context.Context) error {
	p.jobs = engine.New(p.apiClient, p.kinds, p.engineConfig())
	p.workerJobs = p.jobs
	if p.apiClient != p.client {
		p.workerJobs = engine.New(p.client, nil, p.engineConfig())
	}
	p.workerOpts = workerOptions(p.cfg, p.blobs, p.secrets, outbound(p.cfg, p.reserved), p.workerJobs)
	return nil
}

// startWorker starts the worker, for roles all and worker.
func (p *Process) startWorker(context.Context) error {
	cfg := p.cfg
	if !cfg.runsWorker() {
		return nil
	}
	if _, err := p.StartWorker(); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "jobgate: worker polling task queue %q with kinds %v\n", cfg.TaskQueue, kindNames(p.kinds))
	if cfg.AllowPrivateTargets {
		warnPrivateTargets(p.reserved.Addresses(), p.logger, p.out)
	}
	return nil
}

// handler is the API, or for a worker its health probes.
func (p *Process) handler() http.Handler {
	cfg, c := p.cfg, p.apiClient
	if !cfg.runsAPI() {
		return httpapi.Health(func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.TemporalCallTimeout)
			defer cancel()
			if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
				return fmt.Errorf("%w: Temporal health check: %v", job.ErrUnavailable, err)
			}
			// A worker whose Temporal cannot reach its database runs nothing.
			return engine.CheckStore(ctx, c)
		}, p.logger)
	}
	h := httpapi.New(p.jobs, p.kinds, httpapi.Config{
		MaxBodyBytes:          cfg.MaxBodyBytes,
		PublicURL:             cfg.PublicURL,
		RequireIdempotencyKey: cfg.RequireIdempotencyKey,
		MaxWait:               cfg.MaxWait,
		MaxDelay:              cfg.MaxDelay,
		MaxSchedules:          cfg.MaxSchedules,
		TrustedProxies:        cfg.trustedProxies,
		APIKeys:               cfg.apiKeys,
		Limits:                cfg.limits,
		TenantLimits:          cfg.tenantLimits,
		WebhookTenants:        p.secrets.signs,
		Observer:              p.metrics,
		Tenant:                p.opts.Tenant,
		Now:                   p.opts.Now,
		EventsKeepAlive:       p.opts.EventsKeepAlive,
	}, p.logger)
	if len(cfg.apiKeys) == 0 {
		p.logger.Warn("NO API KEYS CONFIGURED: single-tenant local mode, anyone who reaches this port acts for tenant \"default\"; set JOBGATE_API_KEYS before exposing jobgate")
		fmt.Fprintln(p.out, "jobgate: WARNING: no API keys configured (JOBGATE_API_KEYS): single-tenant local mode, no authentication")
	} else {
		p.logger.Info("API keys configured", "tenants", tenantsOf(cfg.apiKeys))
	}
	return h
}

// serveHTTP serves the API (or the probes) on the bound listener.
func (p *Process) serveHTTP(context.Context) error {
	cfg, ln := p.cfg, p.api
	handler := p.handler()
	if p.traced {
		handler = tracing.HTTP(handler, p.tracer)
	}
	srv := newHTTPServer(handler, cfg.ReadHeaderTimeout, cfg.MaxWait+time.Minute)
	// Shutdown waits for requests in flight; long-polls and event streams
	// would hold it for their whole wait, so their contexts end with it.
	baseCtx, endRequests := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	srv.RegisterOnShutdown(endRequests)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("HTTP server failed", "error", err)
			p.failed <- err
		}
	}()
	p.onStop(func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			p.logger.Warn("HTTP server did not drain in time; closing the remaining connections", "error", err)
			_ = srv.Close()
		}
	})
	what := "API"
	if !cfg.runsAPI() {
		what = "health probes"
	}
	fmt.Fprintf(p.out, "jobgate: %s at http://%s%s (try: curl http://%s/readyz)\n", what, displayAddr(ln.Addr()), reach(ln.Addr()), displayAddr(ln.Addr()))
	if cfg.runsAPI() && len(cfg.apiKeys) == 0 && (isUnspecified(ln.Addr()) || !isLoopback(ln.Addr().String())) {
		p.logger.Warn("the unauthenticated API listens beyond this machine: anyone who reaches it acts for tenant \"default\"", "address", ln.Addr().String())
		fmt.Fprintf(p.out, "jobgate: WARNING: JOBGATE_HTTP_ADDR=%s without API keys: anyone on the network who reaches %s acts for tenant \"default\" (unset JOBGATE_HTTP_ADDR to listen on 127.0.0.1 only, or set JOBGATE_API_KEYS)\n", cfg.HTTPAddr, ln.Addr())
	}
	return nil
}
