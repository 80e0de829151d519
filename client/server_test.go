package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
	"github.com/jobgate/jobgate/job"
)

// apiServer is jobgate's real HTTP layer (httpapi) over httpapitest's
// in-memory job service, behind a middleware of the test's: it records
// every request and, where the test asks, answers in ways jobgate's API
// does not but a proxy or another server might (503 and 429 on status
// reads, no long-poll, a 303 without its body, a result without its
// length). The answers are otherwise the server's own, so the client is
// tested against the contract as implemented, not against an imitation.
type apiServer struct {
	*httptest.Server
	Jobs *httpapitest.Jobs
	opts apiOptions

	mu       sync.Mutex
	reads    map[string]int // status reads that reached the API, by job
	requests []apiRequest
	failures []int // statuses the next status reads answer
	held     int   // status reads in flight with Prefer: wait
}

// apiOptions set how an apiServer behaves; they are fixed at creation.
type apiOptions struct {
	prefix string // path prefix the API is mounted under ("/api")
	apiKey string // the one API key (tenant "default"); empty is local mode
	// maxWait caps Prefer: wait (httpapi.Config.MaxWait; 0: its default).
	maxWait time.Duration
	// noLongPoll drops Prefer from status reads: a server that answers
	// at once.
	noLongPoll bool
	// seeOtherWithoutBody drops the body of 303 answers.
	seeOtherWithoutBody bool
	// streamResults drops the Content-Length of results.
	streamResults bool
	// afterSubmit runs on each accepted job before the API answers.
	afterSubmit func(jobs *httpapitest.Jobs, id string)
	// onStatusRead runs before the API answers the nth status read of
	// job id that reaches it (n from 1).
	onStatusRead func(jobs *httpapitest.Jobs, id string, n int)
}

// apiRequest is a request the server received.
type apiRequest struct {
	method, path, query string // path escaped, without the prefix
	header              http.Header
	body                string
	at                  time.Time
}

// mustStartAPI starts an apiServer with the sleep kind and closes it when
// the test ends.
func mustStartAPI(tb testing.TB, opts apiOptions) *apiServer {
	tb.Helper()
	reg, err := job.NewRegistry(httpapitest.Sleep())
	require.NoError(tb, err)
	s := &apiServer{Jobs: httpapitest.NewJobs(reg), opts: opts, reads: map[string]int{}}
	var h http.Handler
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	tb.Cleanup(s.Close)
	cfg := httpapi.Config{MaxWait: opts.maxWait}
	if opts.prefix != "" {
		// Behind a proxy that mounts it under prefix, as a deployment
		// with JOBGATE_PUBLIC_URL.
		cfg.PublicURL = s.Server.URL + opts.prefix
	}
	if opts.apiKey != "" {
		cfg.APIKeys = []httpapi.APIKey{{Tenant: "default", Hash: sha256.Sum256([]byte(opts.apiKey))}}
	}
	api := httpapi.New(submitHook{s.Jobs, opts.afterSubmit}, reg, cfg, slog.New(slog.DiscardHandler))
	h = s.middleware(api)
	if opts.prefix != "" {
		h = http.StripPrefix(opts.prefix, h)
	}
	return s
}

// URL is the base URL a client is given.
func (s *apiServer) URL() string { return s.Server.URL + s.opts.prefix }

// submitHook is the job service with afterSubmit run on each new job.
type submitHook struct {
	*httpapitest.Jobs
	after func(jobs *httpapitest.Jobs, id string)
}

func (h submitHook) Submit(ctx context.Context, req job.SubmitRequest) (*job.Job, bool, error) {
	j, created, err := h.Jobs.Submit(ctx, req)
	if err == nil && created && h.after != nil {
		h.after(h.Jobs, j.ID)
		j, err = h.Jobs.Get(ctx, req.Tenant, j.ID)
	}
	return j, created, err
}

func (s *apiServer) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		status := r.Method == http.MethodGet && strings.HasPrefix(r.URL.EscapedPath(), "/v1/jobs/") &&
			strings.Count(r.URL.EscapedPath(), "/") == 3
		s.mu.Lock()
		s.requests = append(s.requests, apiRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
			header: r.Header.Clone(), body: string(body), at: time.Now()})
		failure := 0
		if status && len(s.failures) > 0 {
			failure, s.failures = s.failures[0], s.failures[1:]
		}
		s.mu.Unlock()
		if failure != 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(failure)
			_, _ = fmt.Fprintf(w, `{"type":"https://jobgate.dev/problems/injected","title":"Injected","status":%d,"detail":"injected by the test"}`, failure)
			return
		}
		if status && s.opts.onStatusRead != nil {
			id := strings.TrimPrefix(r.URL.Path, "/v1/jobs/")
			s.mu.Lock()
			s.reads[id]++
			n := s.reads[id]
			s.mu.Unlock()
			s.opts.onStatusRead(s.Jobs, id, n)
		}
		if status && s.opts.noLongPoll {
			r.Header.Del("Prefer")
		}
		if status && strings.Contains(r.Header.Get("Prefer"), "wait") {
			s.mu.Lock()
			s.held++
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				s.held--
				s.mu.Unlock()
			}()
		}
		next.ServeHTTP(&rewriter{ResponseWriter: w, opts: s.opts, result: strings.HasSuffix(r.URL.Path, "/result")}, r)
	})
}

// rewriter drops what opts say from the API's answers.
type rewriter struct {
	http.ResponseWriter
	opts    apiOptions
	result  bool
	discard bool
}

func (rw *rewriter) WriteHeader(code int) {
	if code == http.StatusSeeOther && rw.opts.seeOtherWithoutBody {
		rw.discard = true
		rw.Header().Del("Content-Type")
		rw.Header().Del("Content-Length")
	}
	if rw.result && rw.opts.streamResults {
		rw.Header().Del("Content-Length")
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *rewriter) Write(b []byte) (int, error) {
	if rw.discard {
		return len(b), nil
	}
	n, err := rw.ResponseWriter.Write(b)
	if rw.result && rw.opts.streamResults {
		// Flushed as it comes: chunked, without a length.
		if f, ok := rw.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
	}
	return n, err
}

// failNext makes the next status reads answer these statuses, with
// Retry-After: 1.
func (s *apiServer) failNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, statuses...)
}

// heldReads is how many status reads a long-poll holds.
func (s *apiServer) heldReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

// received returns the requests of method to path (escaped, without the
// prefix).
func (s *apiServer) received(method, path string) []apiRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []apiRequest
	for _, r := range s.requests {
		if r.method == method && r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// add makes a sleep job of tenant default (expected to take seconds) in
// state, as the job service would hold it.
func (s *apiServer) add(tb testing.TB, state job.State, seconds int) string {
	tb.Helper()
	j, _, err := s.Jobs.Submit(context.Background(), job.SubmitRequest{Tenant: "default", Kind: "sleep", Input: []byte(fmt.Sprintf(`{"seconds":%d}`, seconds))})
	require.NoError(tb, err)
	switch state {
	case job.StateQueued:
	case job.StateRunning:
		s.Jobs.Start(j.ID)
	case job.StateCanceling:
		s.Jobs.Start(j.ID)
		_, err := s.Jobs.Cancel(context.Background(), "default", j.ID)
		require.NoError(tb, err)
	case job.StateCanceled:
		s.Jobs.Canceled(j.ID)
	case job.StateSucceeded:
		s.Jobs.Succeed(j.ID, map[string]int{"slept": seconds})
	case job.StateFailed:
		s.Jobs.Fail(j.ID, "doomed", "it was never going to work")
	default:
		tb.Fatalf("add: state %s", state)
	}
	return j.ID
}
