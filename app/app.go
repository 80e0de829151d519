// Package app is the jobgate program: it reads the configuration from the
// JOBGATE_* environment variables and runs what the role needs: the HTTP
// API, the Temporal worker that runs the jobs, or both, and with no
// Temporal cluster configured, an embedded Temporal server and its Web UI
// as well. cmd/jobgate is app.Main(); a custom binary adds its own job
// kinds with app.Main(kinds...), and a test or a binary that runs
// jobgate beside other things starts a Process with Start(ctx,
// LoadConfig's Config, kinds...), or StartWith and Options for what no
// operator sets (gRPC dial options, a tracer, a clock, the logs), and
// stops it with Close. LoadConfigFrom reads the configuration from other
// variables than the environment's.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
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
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := Start(ctx, cfg, extra...)
	if err != nil {
		return err
	}
	defer p.Close()
	select {
	case <-ctx.Done():
	case <-p.Failed():
		// Logged by the server; the process stops as on a signal.
	}
	p.logger.Info("shutting down: no new requests, finishing in-flight ones")
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
		LogLevel:          cfg.EmbeddedLogLevel,
		HistoryCache:      cfg.EmbeddedHistoryCache,
		DynamicConfigFile: cfg.EmbeddedDynamicConfig,
		SQLiteCacheMiB:    cfg.EmbeddedSQLiteCache,
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
func warnPrivateTargets(reserved []string, logger *slog.Logger, out io.Writer) {
	logger.Warn("PRIVATE TARGETS ALLOWED: every tenant's http.request, batch.http and webhooks can reach whatever this worker can reach: "+
		"loopback, the private network, link-local addresses such as cloud metadata (169.254.169.254); only jobgate's own listeners are refused",
		"refused", reserved)
	fmt.Fprintf(out, "jobgate: WARNING: JOBGATE_ALLOW_PRIVATE_TARGETS=true: any tenant's jobs and webhooks can reach loopback, private and link-local addresses "+
		"(databases, admin consoles, cloud metadata at 169.254.169.254) from this worker; refused still: jobgate's own listeners %v\n", reserved)
}

// listenReserved listens on addr for one of jobgate's side listeners
// (what names it, hint says how to move it) and reserves its address from
// outbound requests.
func listenReserved(addr, what, hint string, reserved *activities.Reserved) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen on %s: %w (%s)", what, addr, err, hint)
	}
	if err := reserved.Add(ln.Addr().String()); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}

// servePprof serves net/http/pprof's handlers at addr until the returned
// function is called. Its address is reserved from outbound requests.
func servePprof(addr string, reserved *activities.Reserved, logger *slog.Logger, out io.Writer) (func(context.Context), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := listenReserved(addr, "profiler", "set JOBGATE_PPROF_ADDR to another address, or empty", reserved)
	if err != nil {
		return nil, err
	}
	// No write timeout: a CPU profile or trace streams for as long as asked.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("profiler failed", "error", err)
		}
	}()
	fmt.Fprintf(out, "jobgate: profiler at http://%s/debug/pprof/\n", displayAddr(ln.Addr()))
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
