package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jobgate/jobgate/activities"
)

// metricsPortOffset puts the default metrics listener this far above the
// HTTP port, so that processes with their own HTTP ports on one host (an
// API on :8080, a worker's probes on :8081) get their own metrics ports
// too (127.0.0.1:9080, 127.0.0.1:9081).
const metricsPortOffset = 1000

// metricsAddr resolves JOBGATE_METRICS_ADDR: set is its value when set;
// unset is loopback at the HTTP port plus metricsPortOffset; "off" (or
// set empty) serves no metrics.
func metricsAddr(value string, set bool, httpAddr string) (string, error) {
	if set {
		if value == "off" {
			return "", nil
		}
		return value, nil
	}
	_, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", fmt.Errorf("JOBGATE_HTTP_ADDR %q: %w", httpAddr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p+metricsPortOffset > 65535 {
		return "", fmt.Errorf("JOBGATE_METRICS_ADDR defaults to 127.0.0.1 at the port of JOBGATE_HTTP_ADDR plus %d, which %q does not allow: set JOBGATE_METRICS_ADDR (or off)", metricsPortOffset, httpAddr)
	}
	if p == 0 {
		return "127.0.0.1:0", nil
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p+metricsPortOffset)), nil
}

// serveMetrics serves h at /metrics on its own listener at addr until the
// returned function is called, and returns its address: off the API's port, so that tenants and
// the internet neither read the metrics nor load the process with
// scrapes. Its address is reserved from outbound requests.
func serveMetrics(addr string, h http.Handler, reserved *activities.Reserved, logger *slog.Logger, out io.Writer) (func(context.Context), net.Addr, error) {
	ln, err := listenReserved(addr, "metrics", "set JOBGATE_METRICS_ADDR to another address, or off", reserved)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener failed", "error", err)
		}
	}()
	fmt.Fprintf(out, "jobgate: metrics at http://%s/metrics%s\n", displayAddr(ln.Addr()), reach(ln.Addr()))
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}, ln.Addr(), nil
}
