package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/jobgate/jobgate/activities"
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
// test or a custom binary starts its own with Start.
type Process struct {
	cfg    Config
	logger *slog.Logger
	// shutdown stops what has started, called in reverse.
	shutdown []func(context.Context)
	// failed receives the HTTP server's failure.
	failed chan error

	st       *storage
	kinds    *job.Registry
	temporal string // the Temporal frontend's address
	metrics  *metrics.Metrics
	tracer   trace.TracerProvider
	// interceptors trace the Temporal client's calls.
	interceptors []interceptor.ClientInterceptor
	client       client.Client
	jobs         *engine.Service
	api          net.Listener
}

// LoadConfig reads and checks the configuration from the JOBGATE_*
// environment variables, for Start; it returns what is wrong with them.
func LoadConfig() (Config, error) { return loadConfig() }

// Start starts jobgate as cfg (from LoadConfig) says, with the built-in
// kinds and extra ones, and returns once it serves. ctx bounds the
// start-up only. It returns configuration and start-up errors, having
// stopped what it started; a kind whose name is taken is one.
func Start(ctx context.Context, cfg Config, extra ...job.Kind) (*Process, error) {
	p := &Process{cfg: cfg, logger: newLogger(cfg.LogLevel), failed: make(chan error, 1), tracer: noop.NewTracerProvider()}
	steps := []func(context.Context) error{
		p.lockDataDir,
		func(ctx context.Context) error { return p.openStorage(ctx, extra) },
		p.startPprof,
		p.listenAPI,
		p.startTemporal,
		p.startObservability,
		p.dialTemporal,
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

// Jobs is the process's job service.
func (p *Process) Jobs() *engine.Service { return p.jobs }

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

// openStorage opens blob storage and the webhook secrets, and builds the
// kinds: the built-in ones, extra, and those of JOBGATE_KINDS_FILE.
func (p *Process) openStorage(ctx context.Context, extra []job.Kind) error {
	cfg := p.cfg
	st, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	p.st = st
	p.onStop(func(context.Context) { st.close(p.logger) })
	builtin := append(activities.Builtin(st.deps(cfg)), flow.Builtin()...)
	all := append(builtin, extra...)
	if cfg.KindsFile != "" {
		declared, err := external.Load(cfg.KindsFile, all, cfg.TaskQueue)
		if err != nil {
			return err
		}
		all = append(all, declared...)
	}
	p.kinds, err = job.NewRegistry(all...)
	return err
}

// startPprof starts the profiler first, to be stopped last: start-up and
// a slow shutdown can be profiled too.
func (p *Process) startPprof(context.Context) error {
	if p.cfg.PprofAddr == "" {
		return nil
	}
	stopPprof, err := servePprof(p.cfg.PprofAddr, p.st.reserved, p.logger)
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
	return p.st.reserved.Add(ln.Addr().String())
}

// startTemporal starts the embedded Temporal server when no cluster is
// configured, and reserves Temporal's addresses from outbound requests.
func (p *Process) startTemporal(context.Context) error {
	cfg := p.cfg
	p.temporal = cfg.TemporalAddress
	if !cfg.embedded() {
		if err := p.st.reserved.Add(p.temporal); err != nil {
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
	fmt.Printf("jobgate: embedded Temporal server at %s (namespace %q, data in %s)\n", p.temporal, cfg.TemporalNamespace, where)
	if ui := srv.UIAddress(); ui != "" {
		fmt.Printf("jobgate: Temporal Web UI at %s\n", ui)
	}
	for _, l := range srv.Listeners() {
		if err := p.st.reserved.Add(l); err != nil {
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
		stopMetrics, err := serveMetrics(cfg.metricsAddr, m.Handler(), p.st.reserved, p.logger)
		if err != nil {
			return err
		}
		p.onStop(stopMetrics)
	}
	if cfg.OTLPEndpoint == "" {
		return nil
	}
	sdkTP, stopTracing, err := tracing.NewOTLP(ctx, cfg.OTLPEndpoint, cfg.Role, cfg.OTLPInsecure)
	if err != nil {
		return err
	}
	p.onStop(func(ctx context.Context) { _ = stopTracing(ctx) })
	p.tracer = sdkTP
	ti, err := tracing.Temporal(sdkTP)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	p.interceptors = append(p.interceptors, ti)
	p.logger.Info("tracing to OTLP endpoint", "endpoint", cfg.OTLPEndpoint)
	return nil
}

// dialTemporal connects to Temporal, registers the search attributes and
// builds the process's one job service: the API's, and what the worker's
// export kind lists jobs through and its webhooks read statuses through,
// with one cache of finished jobs and one set of watchers.
func (p *Process) dialTemporal(ctx context.Context) error {
	cfg := p.cfg
	tlsConf, credentials, err := temporalTLS(cfg)
	if err != nil {
		return err
	}
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
		},
	})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", p.temporal, explainDialError(cfg, err))
	}
	p.client = c
	p.onStop(func(context.Context) { c.Close() })
	if err := engine.EnsureSearchAttributes(ctx, c, cfg.TemporalNamespace); err != nil {
		return err
	}
	p.jobs = engine.New(c, p.kinds, engine.Config{
		TaskQueue:   cfg.TaskQueue,
		CallTimeout: cfg.TemporalCallTimeout,
		EagerStart:  cfg.runsWorker(),
		ResultTTL:   cfg.ResultTTL,
		Namespace:   cfg.TemporalNamespace,
		MaxBacklog:  cfg.MaxBacklog,
		Blobs:       p.st.blobs,
		Secret:      p.st.deploymentSecret,
		// The bound and back-off of watched jobs' look-ups.
		WatchRate:        cfg.WatchRate,
		WatchMaxInterval: cfg.WatchMaxInterval,
	})
	p.st.jobs.svc = p.jobs
	return nil
}

// startWorker starts the worker, for roles all and worker.
func (p *Process) startWorker(context.Context) error {
	cfg := p.cfg
	if !cfg.runsWorker() {
		return nil
	}
	w := worker.New(p.client, cfg.TaskQueue, p.kinds, p.st.workerOptions(cfg, p.jobs))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %q: %w", cfg.TaskQueue, err)
	}
	p.onStop(func(context.Context) { w.Stop() })
	fmt.Printf("jobgate: worker polling task queue %q with kinds %v\n", cfg.TaskQueue, kindNames(p.kinds))
	if cfg.AllowPrivateTargets {
		warnPrivateTargets(p.st.reserved.Addresses(), p.logger)
	}
	return nil
}

// handler is the API, or for a worker its health probes.
func (p *Process) handler() http.Handler {
	cfg, c := p.cfg, p.client
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
		WebhookTenants:        p.st.signs,
		Observer:              p.metrics,
	}, p.logger)
	if len(cfg.apiKeys) == 0 {
		p.logger.Warn("NO API KEYS CONFIGURED: single-tenant local mode, anyone who reaches this port acts for tenant \"default\"; set JOBGATE_API_KEYS before exposing jobgate")
		fmt.Println("jobgate: WARNING: no API keys configured (JOBGATE_API_KEYS): single-tenant local mode, no authentication")
	} else {
		p.logger.Info("API keys configured", "tenants", tenantsOf(cfg.apiKeys))
	}
	return h
}

// serveHTTP serves the API (or the probes) on the bound listener.
func (p *Process) serveHTTP(context.Context) error {
	cfg, ln := p.cfg, p.api
	handler := p.handler()
	if cfg.OTLPEndpoint != "" {
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
	fmt.Printf("jobgate: %s at http://%s%s (try: curl http://%s/readyz)\n", what, displayAddr(ln.Addr()), reach(ln.Addr()), displayAddr(ln.Addr()))
	if cfg.runsAPI() && len(cfg.apiKeys) == 0 && (isUnspecified(ln.Addr()) || !isLoopback(ln.Addr().String())) {
		p.logger.Warn("the unauthenticated API listens beyond this machine: anyone who reaches it acts for tenant \"default\"", "address", ln.Addr().String())
		fmt.Printf("jobgate: WARNING: JOBGATE_HTTP_ADDR=%s without API keys: anyone on the network who reaches %s acts for tenant \"default\" (unset JOBGATE_HTTP_ADDR to listen on 127.0.0.1 only, or set JOBGATE_API_KEYS)\n", cfg.HTTPAddr, ln.Addr())
	}
	return nil
}
