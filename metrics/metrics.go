// Package metrics collects jobgate's Prometheus metrics: HTTP requests by
// route and code, jobs accepted and finished by kind and state, the accept
// latency, and the Temporal SDK's own client and worker metrics, all in one
// registry served at /metrics on its own listener (JOBGATE_METRICS_ADDR).
package metrics

import (
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	promreporter "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Metrics is one process's metrics. Create it with New and Close it at
// shutdown.
type Metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	accepted      *prometheus.CounterVec
	acceptLatency prometheus.Histogram
	temporal      client.MetricsHandler
	scope         io.Closer
}

// New returns a registry with jobgate's metrics, Go runtime and process
// metrics, and a handler for the Temporal SDK's metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobgate_http_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "jobgate_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request (long-polls and event streams included), by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobgate_jobs_accepted_total",
			Help: "Jobs accepted (new ones; idempotent replays not counted), by kind.",
		}, []string{"kind"}),
		acceptLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobgate_job_accept_duration_seconds",
			Help:    "Time from receiving a submission to answering 202 for a new job.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.accepted, m.acceptLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// The SDK reports through tally; tally reports into the same registry.
	reporter := promreporter.NewReporter(promreporter.Options{Registerer: reg})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       promreporter.DefaultSeparator,
		SanitizeOptions: &sanitize,
	}, time.Second)
	m.temporal = sdktally.NewMetricsHandler(scope)
	m.scope = closer
	return m
}

// sanitize is Prometheus's rule for the SDK's metrics: names and label
// names of letters, digits and underscores, but label values as they are
// (Prometheus takes any UTF-8), so that kind="http.request" reads the
// same in jobgate_jobs_finished as in jobgate_jobs_accepted_total.
var sanitize = tally.SanitizeOptions{
	NameCharacters:       sdktally.PrometheusSanitizeOptions.NameCharacters,
	KeyCharacters:        sdktally.PrometheusSanitizeOptions.KeyCharacters,
	ValueCharacters:      tally.ValidCharacters{Ranges: []tally.SanitizeRange{{0, unicode.MaxRune}}},
	ReplacementCharacter: sdktally.PrometheusSanitizeOptions.ReplacementCharacter,
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	// Scrapes beyond a few at once get 503: the scrape is not free.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4})
}

// Temporal is the handler to give the Temporal client (client.Options'
// MetricsHandler), so SDK client, worker and workflow metrics land here.
func (m *Metrics) Temporal() client.MetricsHandler { return m.temporal }

// ObserveRequest records one answered HTTP request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// JobAccepted records a new job of kind accepted after d.
func (m *Metrics) JobAccepted(kind string, d time.Duration) {
	m.accepted.WithLabelValues(kind).Inc()
	m.acceptLatency.Observe(d.Seconds())
}

// Close flushes and stops the SDK metrics' reporting loop.
func (m *Metrics) Close() error { return m.scope.Close() }
