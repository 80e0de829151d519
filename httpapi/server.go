// Package httpapi serves jobgate's HTTP contract (shared/SPEC.md): clients
// submit jobs and get 202 at once, then read their status and result or
// cancel them. It knows the job service, not the engine behind it.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

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
	// unauthenticated mode (default "default").
	Tenant string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	jobs   job.Service
	kinds  *job.Registry
	cfg    Config
	log    *slog.Logger
	router *mux.Router
	ready  func(context.Context) error
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
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{jobs: jobs, kinds: kinds, cfg: cfg, log: logger, router: mux.NewRouter(), ready: jobs.Ready}
	s.routes()
	s.router.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	return s
}

// ServeHTTP implements http.Handler: it tags the request with a request id
// (echoing a sane X-Request-Id) and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	r = r.WithContext(withRequestID(r.Context(), id))
	s.router.ServeHTTP(w, r)
}

// tenant returns the tenant a request acts for.
func (s *Server) tenant(*http.Request) string { return s.cfg.Tenant }

// url returns the client-facing URL of path.
func (s *Server) url(path string) string { return s.cfg.PublicURL + path }

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
