// Package app is the jobgate program: it reads the configuration from the
// JOBGATE_* environment variables and runs what the role needs: the HTTP
// API, the Temporal worker that runs the jobs, or both, and with no
// Temporal cluster configured, an embedded Temporal server and its Web UI
// as well. cmd/jobgate is app.Main(); a custom binary adds its own job
// kinds with app.Main(kinds...).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/metrics"
	"github.com/jobgate/jobgate/tracing"
	"github.com/jobgate/jobgate/worker"
	"github.com/jobgate/jobgate/workflows"
)

// Main runs jobgate with the built-in kinds and extra ones until SIGINT or
// SIGTERM, and exits the process with status 1 if it fails.
func Main(extra ...job.Kind) {
	if err := Run(extra...); err != nil {
		fmt.Fprintln(os.Stderr, "jobgate:", err)
		os.Exit(1)
	}
}

// Run runs jobgate with the built-in kinds and extra ones until SIGINT or
// SIGTERM, then shuts down gracefully. It returns configuration and
// start-up errors; a kind whose name is taken is one.
func Run(extra ...job.Kind) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// One embedded server per data directory: a second one fails here, at
	// once and naming the holder, rather than on SQLite's lock.
	if cfg.embedded() && cfg.EmbeddedStore == "file" {
		release, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer release()
	}

	st, err := openStorage(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.close(logger)
	builtin := append(activities.Builtin(st.deps(cfg)), flow.Builtin()...)
	all := append(builtin, extra...)
	if cfg.KindsFile != "" {
		declared, err := external.Load(cfg.KindsFile, all, cfg.TaskQueue)
		if err != nil {
			return err
		}
		all = append(all, declared...)
	}
	kinds, err := job.NewRegistry(all...)
	if err != nil {
		return err
	}

	// Start in dependency order; shut down in reverse.
	var shutdown []func(context.Context)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		for i := len(shutdown) - 1; i >= 0; i-- {
			shutdown[i](sctx)
		}
		logger.Info("jobgate stopped")
	}()
	// The profiler first and stopped last: start-up and a slow shutdown
	// can be profiled too.
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, st.reserved, logger)
		if err != nil {
			return err
		}
		shutdown = append(shutdown, stopPprof)
	}
	// The API's port is bound before any job can run, so that no job
	// reaches it before it is reserved.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("API listen on %s: %w (set JOBGATE_HTTP_ADDR to another address)", cfg.HTTPAddr, err)
	}
	shutdown = append(shutdown, func(context.Context) { _ = ln.Close() })
	if err := st.reserved.Add(ln.Addr().String()); err != nil {
		return err
	}

	address := cfg.TemporalAddress
	if cfg.embedded() {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return err
		}
		shutdown = append(shutdown, func(context.Context) {
			if err := srv.Stop(); err != nil {
				logger.Warn("embedded Temporal server stopped with an error", "error", err)
			}
		})
		address = srv.FrontendAddress()
		where := cfg.DataDir
		if cfg.embeddedPostgres() {
			where = "PostgreSQL"
		}
		fmt.Printf("jobgate: embedded Temporal server at %s (namespace %q, data in %s)\n", address, cfg.TemporalNamespace, where)
		if ui := srv.UIAddress(); ui != "" {
			fmt.Printf("jobgate: Temporal Web UI at %s\n", ui)
		}
		for _, l := range srv.Listeners() {
			if err := st.reserved.Add(l); err != nil {
				return err
			}
		}
	} else if err := st.reserved.Add(address); err != nil {
		// Temporal's own dial below says what is wrong with the address.
		logger.Warn("cannot resolve the Temporal address to refuse it to outbound requests", "address", address, "error", err)
	}

	m := metrics.New()
	shutdown = append(shutdown, func(context.Context) { _ = m.Close() })
	if cfg.metricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.metricsAddr, m.Handler(), st.reserved, logger)
		if err != nil {
			return err
		}
		shutdown = append(shutdown, stopMetrics)
	}
	var (
		tp           trace.TracerProvider = noop.NewTracerProvider()
		interceptors []interceptor.ClientInterceptor
	)
	if cfg.OTLPEndpoint != "" {
		sdkTP, stopTracing, err := tracing.NewOTLP(ctx, cfg.OTLPEndpoint, cfg.Role, cfg.OTLPInsecure)
		if err != nil {
			return err
		}
		shutdown = append(shutdown, func(ctx context.Context) { _ = stopTracing(ctx) })
		tp = sdkTP
		ti, err := tracing.Temporal(tp)
		if err != nil {
			return fmt.Errorf("tracing: %w", err)
		}
		interceptors = append(interceptors, ti)
		logger.Info("tracing to OTLP endpoint", "endpoint", cfg.OTLPEndpoint)
	}
	tlsConf, credentials, err := temporalTLS(cfg)
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, client.Options{
		Credentials:    credentials,
		MetricsHandler: m.Temporal(),
		Interceptors:   interceptors,
		HostPort:       address,
		Namespace:      cfg.TemporalNamespace,
		Logger:         sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		ConnectionOptions: client.ConnectionOptions{
			GrpcCompression: grpcCompression(cfg.TemporalCompression, address),
			TLS:             tlsConf,
		},
	})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", address, explainDialError(cfg, err))
	}
	shutdown = append(shutdown, func(context.Context) { c.Close() })
	if err := engine.EnsureSearchAttributes(ctx, c, cfg.TemporalNamespace); err != nil {
		return err
	}
	// The process's one job service: the API's, and what the worker's
	// export kind lists jobs through and its webhooks read statuses
	// through, with one cache of finished jobs and one set of watchers.
	jobs := engine.New(c, kinds, engine.Config{
		TaskQueue:   cfg.TaskQueue,
		CallTimeout: cfg.TemporalCallTimeout,
		EagerStart:  cfg.runsWorker(),
		ResultTTL:   cfg.ResultTTL,
		Namespace:   cfg.TemporalNamespace,
		MaxBacklog:  cfg.MaxBacklog,
		Blobs:       st.blobs,
		CursorKey:   st.cursorKey(cfg),
		// The bound and back-off of watched jobs' look-ups.
		WatchRate:        cfg.WatchRate,
		WatchMaxInterval: cfg.WatchMaxInterval,
	})
	st.jobs.svc = jobs

	if cfg.runsWorker() {
		w := worker.New(c, cfg.TaskQueue, kinds, st.workerOptions(cfg, jobs))
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker on task queue %q: %w", cfg.TaskQueue, err)
		}
		shutdown = append(shutdown, func(context.Context) { w.Stop() })
		fmt.Printf("jobgate: worker polling task queue %q with kinds %v\n", cfg.TaskQueue, kindNames(kinds))
		if cfg.AllowPrivateTargets {
			warnPrivateTargets(st.reserved.Addresses(), logger)
		}
	}

	var handler http.Handler
	if cfg.runsAPI() {
		handler = httpapi.New(jobs, kinds, httpapi.Config{
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
			WebhookTenants:        st.signs,
			Observer:              m,
		}, logger)
		if len(cfg.apiKeys) == 0 {
			logger.Warn("NO API KEYS CONFIGURED: single-tenant local mode, anyone who reaches this port acts for tenant \"default\"; set JOBGATE_API_KEYS before exposing jobgate")
			fmt.Println("jobgate: WARNING: no API keys configured (JOBGATE_API_KEYS): single-tenant local mode, no authentication")
		} else {
			logger.Info("API keys configured", "tenants", tenantsOf(cfg.apiKeys))
		}
	} else {
		// A worker serves only its probes.
		handler = httpapi.Health(func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, cfg.TemporalCallTimeout)
			defer cancel()
			if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
				return fmt.Errorf("%w: Temporal health check: %v", job.ErrUnavailable, err)
			}
			// A worker whose Temporal cannot reach its database runs nothing.
			return engine.CheckStore(ctx, c)
		}, logger)
	}
	if cfg.OTLPEndpoint != "" {
		handler = tracing.HTTP(handler, tp)
	}
	srv := newHTTPServer(handler, cfg.ReadHeaderTimeout, cfg.MaxWait+time.Minute)
	// Shutdown waits for requests in flight; long-polls and event streams
	// would hold it for their whole wait, so their contexts end with it.
	baseCtx, endRequests := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	srv.RegisterOnShutdown(endRequests)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server failed", "error", err)
			stop()
		}
	}()
	shutdown = append(shutdown, func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			logger.Warn("HTTP server did not drain in time; closing the remaining connections", "error", err)
			_ = srv.Close()
		}
	})
	what := "API"
	if !cfg.runsAPI() {
		what = "health probes"
	}
	fmt.Printf("jobgate: %s at http://%s%s (try: curl http://%s/readyz)\n", what, displayAddr(ln.Addr()), reach(ln.Addr()), displayAddr(ln.Addr()))
	if cfg.runsAPI() && len(cfg.apiKeys) == 0 && (isUnspecified(ln.Addr()) || !isLoopback(ln.Addr().String())) {
		logger.Warn("the unauthenticated API listens beyond this machine: anyone who reaches it acts for tenant \"default\"", "address", ln.Addr().String())
		fmt.Printf("jobgate: WARNING: JOBGATE_HTTP_ADDR=%s without API keys: anyone on the network who reaches %s acts for tenant \"default\" (unset JOBGATE_HTTP_ADDR to listen on 127.0.0.1 only, or set JOBGATE_API_KEYS)\n", cfg.HTTPAddr, ln.Addr())
	}

	logger.Info("jobgate started", "role", cfg.Role, "temporal", address, "namespace", cfg.TemporalNamespace)
	<-ctx.Done()
	logger.Info("shutting down: no new requests, finishing in-flight ones")
	return nil
}

// startEmbedded starts the in-process Temporal server on a SQLite file in
// the data directory, or in memory with JOBGATE_EMBEDDED_STORE=memory.
func startEmbedded(cfg Config) (*devserver.Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	dbFile, postgres := filepath.Join(cfg.DataDir, "temporal.db"), ""
	if cfg.EmbeddedStore == "memory" {
		dbFile = ""
	} else if cfg.embeddedPostgres() {
		dbFile, postgres = "", cfg.EmbeddedStore
	}
	// Retention covers the result TTL, so an expired job answers 410 for a
	// day before Temporal forgets it and it becomes 404.
	retention := cfg.ResultTTL + 24*time.Hour
	srv, err := devserver.Start(devserver.Options{
		DatabaseFile: dbFile,
		Postgres:     postgres,
		Port:         cfg.EmbeddedTemporalPort,
		UIPort:       cfg.EmbeddedUIPort,
		HTTPPort:     cfg.EmbeddedHTTPPort,
		Namespace:    cfg.TemporalNamespace,
		Retention:    retention,
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
		LogLevel: cfg.EmbeddedLogLevel,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal server: %w", err)
	}
	return srv, nil
}

// grpcCompression is the SDK's compression for setting (auto, gzip or
// none) to address.
func grpcCompression(setting, address string) client.GrpcCompression {
	if setting == "none" || setting == "auto" && isLoopback(address) {
		return &client.GrpcCompressionNone{}
	}
	return &client.GrpcCompressionGzip{}
}

// isLoopback reports whether a host:port names this machine's loopback
// interface.
func isLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	// Dialling an unspecified address (0.0.0.0, ::) reaches this machine.
	return err == nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// warnPrivateTargets says what JOBGATE_ALLOW_PRIVATE_TARGETS=true opens up
// and what stays refused.
func warnPrivateTargets(reserved []string, logger *slog.Logger) {
	logger.Warn("PRIVATE TARGETS ALLOWED: every tenant's http.request, batch.http and webhooks can reach whatever this worker can reach: "+
		"loopback, the private network, link-local addresses such as cloud metadata (169.254.169.254); only jobgate's own listeners are refused",
		"refused", reserved)
	fmt.Printf("jobgate: WARNING: JOBGATE_ALLOW_PRIVATE_TARGETS=true: any tenant's jobs and webhooks can reach loopback, private and link-local addresses "+
		"(databases, admin consoles, cloud metadata at 169.254.169.254) from this worker; refused still: jobgate's own listeners %v\n", reserved)
}

// servePprof serves net/http/pprof's handlers at addr until the returned
// function is called. Its address is reserved from outbound requests.
func servePprof(addr string, reserved *activities.Reserved, logger *slog.Logger) (func(context.Context), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("profiler listen on %s: %w (set JOBGATE_PPROF_ADDR to another address, or empty)", addr, err)
	}
	if err := reserved.Add(ln.Addr().String()); err != nil {
		_ = ln.Close()
		return nil, err
	}
	// No write timeout: a CPU profile or trace streams for as long as asked.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("profiler failed", "error", err)
		}
	}()
	fmt.Printf("jobgate: profiler at http://%s/debug/pprof/\n", displayAddr(ln.Addr()))
	return func(context.Context) { _ = srv.Close() }, nil
}

// newHTTPServer returns the API's server, with timeouts against slow
// clients.
func newHTTPServer(h http.Handler, readHeaderTimeout, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler: h,
		// A client that trickles its headers or body is cut off.
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout + 20*time.Second,
		// Long-polls last up to JOBGATE_MAX_WAIT; event streams lift the
		// write deadline themselves.
		WriteTimeout:   writeTimeout,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
}

// reach says, after the address printed, who can reach a listener bound
// to all interfaces (printed as localhost).
func reach(a net.Addr) string {
	if isUnspecified(a) {
		return " on all interfaces"
	}
	return ""
}

func isUnspecified(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsUnspecified()
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
}

// tenantsOf lists the tenants that have keys: names only, never hashes.
func tenantsOf(keys []httpapi.APIKey) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !seen[k.Tenant] {
			seen[k.Tenant] = true
			out = append(out, k.Tenant)
		}
	}
	return out
}

func kindNames(r *job.Registry) []string {
	var names []string
	for _, k := range r.Kinds() {
		names = append(names, k.Name)
	}
	return names
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
