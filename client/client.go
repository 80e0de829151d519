// Package client is a Go client of jobgate's HTTP contract (docs/api.md):
// it submits jobs, reads their status, waits for them to end (long-polling,
// and honouring Retry-After on servers that do not long-poll), cancels them
// and streams their results.
//
// Every error the server answers is a *Problem (RFC 9457), which errors.Is
// matches against ErrNotFound, ErrGone, ErrConflict, ErrRateLimited,
// ErrUnavailable and ErrInvalid. The package's Example (example_test.go,
// compiled with the tests) goes from submission to result with every
// error handled.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// defaultLongPoll is how long Wait asks the server to hold each status
	// request (Prefer: wait=30).
	defaultLongPoll = 30 * time.Second
	// headerTimeout bounds how long a request waits for the response
	// headers, beyond the time it asked the server to hold it.
	headerTimeout = 30 * time.Second
	// defaultRetryAfter is how long Wait sleeps when the server gave no
	// usable Retry-After; maxRetryAfter caps what it gives.
	defaultRetryAfter = time.Second
	maxRetryAfter     = 60 * time.Second
	// maxBodyBytes caps the status and problem bodies the client reads.
	maxBodyBytes = 4 << 20
	userAgent    = "jobgate-go-client"
	acceptJSON   = "application/json, application/problem+json"
)

// Client talks to one jobgate deployment. It is safe for concurrent use.
//
// Every request waits at most 30 seconds for the response headers beyond the
// time it asked the server to hold it (Prefer: wait); reading a body (a
// streamed result) has no time limit other than the caller's context.
type Client struct {
	base     *url.URL // absolute, path ending in "/"
	http     *http.Client
	apiKey   string
	longPoll time.Duration
}

// Option configures a Client built by New.
type Option func(*config) error

type config struct {
	httpClient *http.Client
	apiKey     string
	longPoll   time.Duration
}

// WithHTTPClient makes the Client send its requests through hc (its
// transport, timeouts and cookie jar). The Client uses a copy of hc that
// never follows redirects, since it handles 303 See Other itself; hc's own
// Timeout, if any, must exceed the long-poll time (WithLongPoll) or Wait
// fails with hc's timeout error. New returns an error for a nil hc.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("jobgate client: WithHTTPClient(nil); pass an *http.Client or leave the option out for the default")
		}
		c.httpClient = hc
		return nil
	}
}

// WithAPIKey makes the Client authenticate every request with
// "Authorization: Bearer <key>". Without it (or with an empty key) requests
// carry no credentials, which a single-tenant local deployment accepts.
func WithAPIKey(key string) Option {
	return func(c *config) error {
		c.apiKey = key
		return nil
	}
}

// WithLongPoll sets how long Wait asks the server to hold each status
// request (Prefer: wait, in whole seconds rounded up; default 30s). Zero
// turns long-polling off: Wait then polls, sleeping the server's
// Retry-After between requests. New returns an error for a negative d.
func WithLongPoll(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("jobgate client: WithLongPoll(%s) is negative; use 0 to turn long-polling off", d)
		}
		c.longPoll = d
		return nil
	}
}

// New returns a Client of the jobgate deployment at baseURL, an absolute
// http:// or https:// URL ("http://localhost:8080", or with a path prefix
// behind a proxy: "https://example.com/jobgate"). It returns an error for a
// baseURL that is not such a URL, or for an invalid option.
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: base URL %q: %w", baseURL, err)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("jobgate client: base URL %q must be an absolute http:// or https:// URL, such as http://localhost:8080", baseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("jobgate client: base URL %q must not have a query or fragment", baseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	cfg := config{longPoll: defaultLongPoll}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	var hc *http.Client
	if cfg.httpClient != nil {
		cp := *cfg.httpClient
		hc = &cp
	} else {
		hc = newHTTPClient()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{base: base, http: hc, apiKey: cfg.apiKey, longPoll: cfg.longPoll}, nil
}

// newHTTPClient is the default HTTP client: bounded connects and TLS
// handshakes, pooled connections, no overall Timeout (it would cut off
// long-polls and streamed results; the Client bounds the wait for headers
// itself).
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// request is one HTTP request to the API.
type request struct {
	method string
	path   string // escaped, relative to the base URL: "v1/jobs/abc"
	query  url.Values
	header http.Header
	body   []byte
	// wait is how long the request asked the server to hold it.
	wait time.Duration
}

// do sends r and returns the response once its headers arrived. The
// response body must be closed. Errors are the context's when ctx ended,
// otherwise transport errors or a timeout waiting for the headers.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	ref, err := url.Parse(r.path)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: building the URL of %q: %w", r.path, err)
	}
	u := c.base.ResolveReference(ref)
	u.RawQuery = r.query.Encode()

	reqCtx, cancel := context.WithCancelCause(ctx)
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(reqCtx, r.method, u.String(), body)
	if err != nil {
		cancel(nil)
		return nil, fmt.Errorf("jobgate client: %s %s: %w", r.method, u.Redacted(), err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", acceptJSON)
	}
	req.Header.Set("User-Agent", userAgent)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}

	limit := r.wait + headerTimeout
	errTimeout := fmt.Errorf("jobgate client: %s %s: no answer within %s", r.method, u.Redacted(), limit)
	timer := time.AfterFunc(limit, func() { cancel(errTimeout) })
	resp, err := c.http.Do(req)
	if !timer.Stop() {
		// The headers came too late (or not at all): the request is
		// canceled, so whatever arrived is unusable.
		if err == nil {
			drainClose(resp.Body)
		}
		cancel(nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errTimeout
	}
	if err != nil {
		cancel(nil)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("jobgate client: %w", err)
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// drainClose reads a little of what is left of body, so that the connection
// can be reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// jobPath is the escaped path of a job's status, relative to the base URL.
func jobPath(id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("jobgate client: %q is not a job id; pass the id of a submitted job (Job.ID)", id)
	}
	return "v1/jobs/" + url.PathEscape(id), nil
}

// jobIDFromLocation returns the job id in a status or result URL
// (".../v1/jobs/{id}" or ".../v1/jobs/{id}/result"), relative or absolute.
func (c *Client) jobIDFromLocation(loc string) (string, error) {
	ref, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "", fmt.Errorf("jobgate client: the server sent Location %q, which names no job", loc)
	}
	p := strings.TrimSuffix(c.base.ResolveReference(ref).EscapedPath(), "/")
	p = strings.TrimSuffix(p, "/result")
	i := strings.LastIndex(p, "/jobs/")
	if i < 0 || strings.Contains(p[i+len("/jobs/"):], "/") {
		return "", fmt.Errorf("jobgate client: the server sent Location %q, which names no job", loc)
	}
	id, err := url.PathUnescape(p[i+len("/jobs/"):])
	if err != nil || id == "" {
		return "", fmt.Errorf("jobgate client: the server sent Location %q, which names no job", loc)
	}
	return id, nil
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110). It returns 0 when v is absent or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// pollDelay is how long to sleep before asking again after the server said
// retryAfter: defaultRetryAfter when it said nothing usable, at most
// maxRetryAfter.
func pollDelay(retryAfter time.Duration) time.Duration {
	if retryAfter <= 0 {
		return defaultRetryAfter
	}
	return min(retryAfter, maxRetryAfter)
}

// sleep waits for d or until ctx ends, whichever comes first; it returns
// ctx.Err() in the latter case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// preferWait is the Prefer value asking the server to hold a request for
// d, in whole seconds rounded up.
func preferWait(d time.Duration) string {
	return "wait=" + strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// appliedWait reads the wait=N the server says it applied
// (Preference-Applied, RFC 7240): applied is false when it says nothing of
// wait; d is N seconds, or 0 when N is missing or unreadable.
func appliedWait(h http.Header) (d time.Duration, applied bool) {
	for _, v := range h.Values("Preference-Applied") {
		for _, tok := range strings.Split(v, ",") {
			tok, _, _ = strings.Cut(tok, ";")
			name, val, _ := strings.Cut(tok, "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n < 0 {
				return 0, true
			}
			return time.Duration(min(n, 1<<31)) * time.Second, true
		}
	}
	return 0, false
}

// mediaType is the media type of a Content-Type value, lower case, or "".
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// isJSON reports whether a media type is JSON (application/json or a
// +json type).
func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
