// Package httpapi serves jobgate's HTTP contract (docs/api.md): clients
// submit jobs and get 202 at once, then read their status and result or
// cancel them. It knows the job service, not the engine behind it.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"

	"github.com/jobgate/jobgate/job"
)

// Config configures the HTTP API. Zero values take the defaults shown.
type Config struct {
	// MaxBodyBytes caps a request body; larger bodies get 413 (default
	// 1 MiB).
	MaxBodyBytes int64
	// PublicURL, when set, is the absolute base of Location headers and
	// links ("https://jobs.example.com"); empty gives absolute paths.
	PublicURL string
	// RequireIdempotencyKey makes submissions without an Idempotency-Key a
	// 400.
	RequireIdempotencyKey bool
	// Tenant is the single tenant every request belongs to in local,
	// unauthenticated mode, when APIKeys is empty (default "default").
	Tenant string
	// APIKeys authenticate requests to /v1/ and name their tenant. Empty
	// means single-tenant local mode.
	APIKeys []APIKey
	// Limits are every tenant's rate and active-job limits, unless
	// TenantLimits has the tenant's own.
	Limits Limits
	// TenantLimits are per-tenant limits, by tenant.
	TenantLimits map[string]Limits
	// MaxWait caps Prefer: wait=N on submissions and long-polls (default
	// 60s).
	MaxWait time.Duration
	// MaxDelay caps how far ahead a submission's runAt or delaySeconds may
	// start it; beyond is a 422 (default 30 days).
	MaxDelay time.Duration
	// MaxSchedules caps each tenant's schedules; beyond is a 429 (0: no
	// cap).
	MaxSchedules int
	// TrustedProxies are the networks whose X-Forwarded-Proto and
	// X-Forwarded-Host are believed when building absolute URLs (unless
	// PublicURL is set). Empty trusts nobody.
	TrustedProxies []netip.Prefix
	// EventsKeepAlive is how often an event stream sends a comment so that
	// proxies keep it open (default 15s).
	EventsKeepAlive time.Duration
	// Observer, when set, receives request and acceptance observations.
	Observer Observer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// WebhookTenants reports whether webhooks can be signed for a tenant;
	// a callbackUrl from another tenant is a 422. Nil accepts every
	// tenant's.
	WebhookTenants func(tenant string) bool
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	jobs    job.Service
	kinds   *job.Registry
	cfg     Config
	log     *slog.Logger
	router  *mux.Router
	ready   func(context.Context) error
	limiter *limiter
	// streams counts each tenant's open streams and long-polls.
	streams streamSlots
	// schedules keeps tenants' schedules: jobs, when it implements
	// job.ScheduleService (engine.Service does), else noSchedules.
	schedules job.ScheduleService
	// finished keeps the encoded status bodies of finished jobs.
	finished finishedBodies
	// checkHosts makes the API refuse Host names other than local ones
	// (local mode: no API keys; checkHost).
	checkHosts bool
	// authFailures throttles clients that fail authentication.
	authFailures authFailures
}

// New returns the API over jobs, which runs the given kinds.
func New(jobs job.Service, kinds *job.Registry, cfg Config, logger *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "default"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Minute
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * 24 * time.Hour
	}
	if cfg.EventsKeepAlive <= 0 {
		cfg.EventsKeepAlive = 15 * time.Second
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{jobs: jobs, kinds: kinds, cfg: cfg, log: logger, router: mux.NewRouter()}
	s.ready = newReadiness(jobs.Ready, logger, cfg.Now).check
	s.limiter = newLimiter(cfg.Limits, cfg.TenantLimits, cfg.Now)
	s.checkHosts = len(cfg.APIKeys) == 0
	if sched, ok := jobs.(job.ScheduleService); ok {
		s.schedules = sched
	} else {
		s.schedules = noSchedules{}
	}
	s.routes()
	s.router.Use(routeTemplate)
	s.router.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	return s
}

// ServeHTTP implements http.Handler: it tags the request with a request id
// (echoing a sane X-Request-Id); for /v1/ it authenticates the caller and
// applies the tenant's rate limit; then it routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	secureHeaders(w.Header())
	r = r.WithContext(withRequestID(r.Context(), id))
	rec := &recorder{ResponseWriter: w, code: http.StatusOK}
	s.serve(rec, r)
	s.observe(r, rec.route, rec.code, time.Since(start), rec.tenant, rec.quiet)
}

func (s *Server) serve(w *recorder, r *http.Request) {
	if err := s.checkHost(r); err != nil {
		s.Error(w, r, err)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		tenant, err := s.authenticateThrottled(w, r)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		w.tenant = tenant
		r = r.WithContext(withTenant(r.Context(), tenant))
		if s.limiter != nil {
			if err := s.limiter.allow(w, tenant); err != nil {
				s.Error(w, r, err)
				return
			}
		}
	}
	s.router.ServeHTTP(w, r)
}

// observe records an answered request in the metrics and the log: client
// errors at info, server errors at warn, the rest at debug. tenant is who
// the request acted for, "" when it was not authenticated; a quiet answer
// is logged at debug.
func (s *Server) observe(r *http.Request, route string, code int, d time.Duration, tenant string, quiet bool) {
	if route == "" {
		// Answered before routing (authentication, rate limit) or by no
		// route: match it now.
		route = "unmatched"
		var match mux.RouteMatch
		if s.router.Match(r, &match) && match.Route != nil {
			route, _ = match.Route.GetPathTemplate()
		}
	}
	// A tracing span around the API is named by route, not by job id.
	trace.SpanFromContext(r.Context()).SetName(r.Method + " " + route)
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveRequest(route, knownMethod(r.Method), code, d)
	}
	if s.log == nil || route == "/healthz" || route == "/readyz" {
		return
	}
	level := slog.LevelDebug
	switch {
	case quiet:
	case code >= 500:
		level = slog.LevelWarn
	case code >= 400:
		level = slog.LevelInfo
	}
	s.log.Log(r.Context(), level, "request", "requestId", requestID(r.Context()), "method", r.Method, "route", route,
		"status", code, "durationMs", d.Milliseconds(), "tenant", tenant)
}

// knownMethod is m if it is a standard method, else "OTHER", so clients
// cannot mint metric series.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// Observer receives what the API observes, for metrics.
type Observer interface {
	// ObserveRequest records an answered request by route template.
	ObserveRequest(route, method string, code int, d time.Duration)
	// JobAccepted records a new job accepted d after its request arrived.
	JobAccepted(kind string, d time.Duration)
}

// recorder remembers the status code a handler wrote. It unwraps, so
// http.ResponseController reaches the real writer (flushing, deadlines).
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
	// route is the matched route's path template, set as the router
	// dispatches (routeTemplate); "" if the request was answered before.
	route string
	// tenant is who the request acts for, once authenticated.
	tenant string
	// quiet logs the answer at debug level only (throttled failures).
	quiet bool
}

// routeTemplate is router middleware: it notes the matched route in the
// request's recorder, so that observe need not match the request again.
func routeTemplate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			if route := mux.CurrentRoute(r); route != nil {
				rec.route, _ = route.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// url returns the client-facing URL of path: under PublicURL when set,
// else under the scheme and host a trusted proxy forwarded, else the path
// alone.
func (s *Server) url(r *http.Request, path string) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL + path
	}
	if base := s.forwardedBase(r); base != "" {
		return base + path
	}
	return path
}

// forwardedBase is "proto://host" from X-Forwarded-Proto and
// X-Forwarded-Host when the direct peer is a trusted proxy.
func (s *Server) forwardedBase(r *http.Request) string {
	if len(s.cfg.TrustedProxies) == 0 {
		return ""
	}
	host := firstValue(r.Header.Get("X-Forwarded-Host"))
	if host == "" || strings.ContainsAny(host, "/\\@ ") {
		return ""
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	trusted := false
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			trusted = true
			break
		}
	}
	if !trusted {
		return ""
	}
	proto := strings.ToLower(firstValue(r.Header.Get("X-Forwarded-Proto")))
	if proto != "https" {
		proto = "http"
	}
	return proto + "://" + host
}

// firstValue is the first of a comma-separated header's values: the one
// the proxy nearest the client set.
func firstValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	return strings.TrimSpace(first)
}

func validRequestID(id string) bool { return plainToken(id, 128) }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
