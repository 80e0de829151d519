package client_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeJobgate is a small in-memory imitation of jobgate's HTTP contract
// (docs/api.md), for testing the client against the answers a real
// server gives: 202 with Location and Retry-After, 303 to the result,
// ETag and 304, long-poll with Prefer: wait, 202/204/409 on DELETE, the
// result with its own Content-Type, problem+json errors. It imitates HTTP
// only; there is no Temporal behind it. Jobs change when the test says so
// (update, finish) or, for kind "sleep", after a number of status polls.
//
// Kinds: "sleep" (input {"polls": n}: succeeds on its nth status poll;
// never by itself without input), "instant" (succeeds at once), "doomed"
// (fails at once); others are 422.
type fakeJobgate struct {
	srv  *httptest.Server
	cfg  fakeConfig
	done chan struct{} // closed at cleanup: releases held requests

	mu       sync.Mutex
	jobs     map[string]*fakeJob
	keys     map[string]string // Idempotency-Key → job id
	changed  chan struct{}     // closed and replaced on every change
	holding  int               // status requests being held by a long-poll
	requests []fakeRequest
	failures []int // statuses the next status requests answer (503, 429)
}

// fakeConfig sets how the fake behaves; it is fixed at creation.
type fakeConfig struct {
	longPoll     bool       // honour Prefer: wait on status requests
	maxWait      int        // cap on a long-poll's wait, in seconds (0: none)
	retryAfter   int        // Retry-After seconds for unfinished jobs (default 1)
	apiKey       string     // required Bearer key, if set
	prefix       string     // path prefix the API is mounted under ("/api")
	seeOtherBody bool       // a submission's 303 carries the status body
	result       fakeResult // what GET …/result answers for succeeded jobs
}

// fakeResult is the result every succeeded job has.
type fakeResult struct {
	contentType string
	body        string
	filename    string
	chunked     bool // streamed without Content-Length
}

type fakeJob struct {
	id, kind, fingerprint, callbackURL string
	state                              string
	current, total                     int64
	finishAfter                        int // succeed on this status poll (0: when the test says)
	polls                              int
	version                            int
	expired                            bool
	createdAt, updatedAt               time.Time
	startedAt, completedAt             time.Time
	failure                            *fakeProblem
}

// fakeRequest is a request the fake received.
type fakeRequest struct {
	method, path, query string // path escaped, without the prefix
	header              http.Header
	body                string
	at                  time.Time
}

// fakeStatus is the status body of the contract.
type fakeStatus struct {
	ID                  string        `json:"id"`
	Kind                string        `json:"kind"`
	State               string        `json:"state"`
	Progress            *fakeProgress `json:"progress"`
	CreatedAt           time.Time     `json:"createdAt"`
	StartedAt           *time.Time    `json:"startedAt"`
	UpdatedAt           time.Time     `json:"updatedAt"`
	CompletedAt         *time.Time    `json:"completedAt"`
	Attempt             int           `json:"attempt"`
	EstimatedCompletion *time.Time    `json:"estimatedCompletion"`
	StatusURL           string        `json:"statusUrl"`
	ResultURL           *string       `json:"resultUrl"`
	Error               *fakeProblem  `json:"error"`
	Callback            any           `json:"callback"`
}

type fakeProgress struct {
	Percent *int   `json:"percent"`
	Current int64  `json:"current"`
	Total   int64  `json:"total"`
	Message string `json:"message,omitempty"`
}

// fakeProblem is an RFC 9457 problem with jobgate's extension members.
type fakeProblem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status,omitempty"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	Errors    []map[string]string `json:"errors,omitempty"`
	JobID     string              `json:"jobId,omitempty"`
	State     string              `json:"state,omitempty"`
	StatusURL string              `json:"statusUrl,omitempty"`
	RequestID string              `json:"requestId,omitempty"`
	Error     *fakeProblem        `json:"error,omitempty"`
}

// mustStartFake starts a fakeJobgate, closed when the test ends.
func mustStartFake(tb testing.TB, cfg fakeConfig) *fakeJobgate {
	tb.Helper()
	if cfg.retryAfter == 0 {
		cfg.retryAfter = 1
	}
	f := &fakeJobgate{
		cfg:     cfg,
		done:    make(chan struct{}),
		jobs:    map[string]*fakeJob{},
		keys:    map[string]string{},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", f.handleSubmit)
	mux.HandleFunc("GET /v1/jobs/{id}", f.handleStatus)
	mux.HandleFunc("DELETE /v1/jobs/{id}", f.handleCancel)
	mux.HandleFunc("GET /v1/jobs/{id}/result", f.handleResult)
	var h http.Handler = f.middleware(mux)
	if cfg.prefix != "" {
		h = http.StripPrefix(cfg.prefix, h)
	}
	f.srv = httptest.NewServer(h)
	tb.Cleanup(f.srv.Close)
	tb.Cleanup(func() { close(f.done) }) // runs first: frees held requests
	return f
}

// URL is the base URL of the API.
func (f *fakeJobgate) URL() string { return f.srv.URL + f.cfg.prefix }

// middleware records every request, checks the API key and tags the answer
// with a request id.
func (f *fakeJobgate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		r.Body.Close()
		r.Body = readCloser{bytes.NewReader(body.Bytes())}
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{
			method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
			header: r.Header.Clone(), body: body.String(), at: time.Now(),
		})
		w.Header().Set("X-Request-Id", "req-"+strconv.Itoa(len(f.requests)))
		f.mu.Unlock()
		if f.cfg.apiKey != "" && r.Header.Get("Authorization") != "Bearer "+f.cfg.apiKey {
			f.writeProblem(w, r, &fakeProblem{Status: 401, Type: "unauthorized", Title: "Unauthorized", Detail: "Send Authorization: Bearer <api-key>."}, 0)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// handleSubmit imitates POST /v1/jobs.
func (f *fakeJobgate) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		f.writeProblem(w, r, &fakeProblem{Status: 415, Type: "unsupported-media-type", Title: "Unsupported media type"}, 0)
		return
	}
	var body struct {
		Kind        string          `json:"kind"`
		Input       json.RawMessage `json:"input"`
		CallbackURL string          `json:"callbackUrl"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		f.writeProblem(w, r, &fakeProblem{Status: 400, Type: "malformed-json", Title: "Malformed JSON", Detail: err.Error()}, 0)
		return
	}
	switch body.Kind {
	case "sleep", "instant", "doomed":
	case "":
		f.writeProblem(w, r, &fakeProblem{Status: 422, Type: "invalid-input", Title: "Invalid job input",
			Errors: []map[string]string{{"field": "/kind", "message": "is required"}}}, 0)
		return
	default:
		f.writeProblem(w, r, &fakeProblem{Status: 422, Type: "unknown-kind", Title: "Unknown job kind",
			Errors: []map[string]string{{"field": "/kind", "message": "must be one of: doomed, instant, sleep"}}}, 0)
		return
	}
	fingerprint := body.Kind + "\x00" + string(body.Input) + "\x00" + body.CallbackURL
	key := r.Header.Get("Idempotency-Key")

	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.keys[key]; ok && key != "" {
		j := f.jobs[id]
		if j.fingerprint != fingerprint {
			f.writeProblem(w, r, &fakeProblem{Status: 422, Type: "idempotency-key-reused", Title: "Idempotency-Key reused"}, 0)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		f.writeStatus(w, r, http.StatusAccepted, j)
		return
	}
	j := f.addLocked(body.Kind, "queued")
	j.fingerprint, j.callbackURL = fingerprint, body.CallbackURL
	switch body.Kind {
	case "instant":
		f.setStateLocked(j, "succeeded")
	case "doomed":
		f.setStateLocked(j, "failed")
	case "sleep":
		var in struct{ Polls int }
		_ = json.Unmarshal(body.Input, &in)
		j.finishAfter, j.total = in.Polls, int64(in.Polls)
	}
	if key != "" {
		f.keys[key] = j.id
	}

	wait, async := parsePrefer(r.Header)
	if wait > 0 && !async && terminal(j.state) {
		// The job ended within the wait (instantly, here).
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(wait))
		if j.state != "succeeded" {
			f.writeStatus(w, r, http.StatusOK, j)
			return
		}
		w.Header().Set("Location", "http://"+r.Host+f.cfg.prefix+"/v1/jobs/"+j.id+"/result")
		if f.cfg.seeOtherBody {
			f.writeStatus(w, r, http.StatusSeeOther, j)
			return
		}
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	f.writeStatus(w, r, http.StatusAccepted, j)
}

// handleStatus imitates GET /v1/jobs/{id}: failures injected first, then
// the long-poll, If-None-Match, and 303 unless ?redirect=false.
func (f *fakeJobgate) handleStatus(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) > 0 {
		status := f.failures[0]
		f.failures = f.failures[1:]
		if status == http.StatusTooManyRequests {
			w.Header().Set("RateLimit-Policy", `"default";q=10;w=1`)
		}
		f.writeProblem(w, r, &fakeProblem{Status: status, Type: "unavailable", Title: http.StatusText(status)}, 1)
		return
	}
	j, ok := f.lookupLocked(w, r)
	if !ok {
		return
	}
	j.polls++
	if j.finishAfter > 0 {
		switch {
		case j.polls >= j.finishAfter:
			j.current = j.total
			f.setStateLocked(j, "succeeded")
		default:
			j.current = int64(j.polls)
			f.setStateLocked(j, "running")
		}
	}

	wait, _ := parsePrefer(r.Header)
	if f.cfg.maxWait > 0 {
		wait = min(wait, f.cfg.maxWait)
	}
	if f.cfg.longPoll && wait > 0 {
		w.Header().Set("Preference-Applied", "wait="+strconv.Itoa(wait))
		deadline := time.NewTimer(time.Duration(wait) * time.Second)
		defer deadline.Stop()
		version := j.version
		f.holding++
	hold:
		for !terminal(j.state) && j.version == version {
			changed := f.changed
			f.mu.Unlock()
			select {
			case <-changed:
				f.mu.Lock()
			case <-deadline.C:
				f.mu.Lock()
				break hold
			case <-r.Context().Done():
				f.mu.Lock()
				f.holding--
				return
			case <-f.done:
				f.mu.Lock()
				break hold
			}
		}
		f.holding--
	}

	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag(j) {
		w.Header().Set("ETag", etag(j))
		w.Header().Set("Cache-Control", "no-store")
		if !terminal(j.state) {
			w.Header().Set("Retry-After", strconv.Itoa(f.cfg.retryAfter))
		}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	code := http.StatusOK
	if j.state == "succeeded" && r.URL.Query().Get("redirect") != "false" {
		code = http.StatusSeeOther
		w.Header().Set("Location", f.cfg.prefix+"/v1/jobs/"+j.id+"/result")
	}
	f.writeStatus(w, r, code, j)
}

// handleCancel imitates DELETE /v1/jobs/{id}.
func (f *fakeJobgate) handleCancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.lookupLocked(w, r)
	if !ok {
		return
	}
	switch j.state {
	case "canceled":
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	case "succeeded", "failed":
		f.writeProblem(w, r, &fakeProblem{Status: 409, Type: "job-finished", Title: "The job already finished",
			JobID: j.id, State: j.state, StatusURL: f.cfg.prefix + "/v1/jobs/" + j.id}, 0)
		return
	case "queued", "running":
		f.setStateLocked(j, "canceling")
	}
	w.Header().Set("Location", f.cfg.prefix+"/v1/jobs/"+j.id)
	f.writeStatus(w, r, http.StatusAccepted, j)
}

// handleResult imitates GET /v1/jobs/{id}/result.
func (f *fakeJobgate) handleResult(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.lookupLocked(w, r)
	if !ok {
		return
	}
	if j.state != "succeeded" {
		f.writeProblem(w, r, &fakeProblem{Status: 409, Type: "job-not-succeeded", Title: "The job has no result",
			JobID: j.id, State: j.state, StatusURL: f.cfg.prefix + "/v1/jobs/" + j.id, Error: j.failure}, 0)
		return
	}
	res := f.cfg.result
	w.Header().Set("Content-Type", res.contentType)
	if res.filename != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": res.filename}))
	}
	if !res.chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(res.body)))
		_, _ = w.Write([]byte(res.body))
		return
	}
	half := len(res.body) / 2
	_, _ = w.Write([]byte(res.body[:half]))
	w.(http.Flusher).Flush()
	_, _ = w.Write([]byte(res.body[half:]))
}

// lookupLocked finds the job of the request's {id}, answering 404 or 410
// when it cannot be read.
func (f *fakeJobgate) lookupLocked(w http.ResponseWriter, r *http.Request) (*fakeJob, bool) {
	j, ok := f.jobs[r.PathValue("id")]
	switch {
	case !ok:
		f.writeProblem(w, r, &fakeProblem{Status: 404, Type: "not-found", Title: "No such job", Detail: "There is no job with this id for your tenant."}, 0)
		return nil, false
	case j.expired:
		f.writeProblem(w, r, &fakeProblem{Status: 410, Type: "expired", Title: "Job expired"}, 0)
		return nil, false
	}
	return j, true
}

// writeStatus answers with j's status body and its headers.
func (f *fakeJobgate) writeStatus(w http.ResponseWriter, r *http.Request, code int, j *fakeJob) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("ETag", etag(j))
	if !terminal(j.state) {
		h.Set("Retry-After", strconv.Itoa(f.cfg.retryAfter))
	}
	if code == http.StatusAccepted && r.Method == http.MethodPost {
		h.Set("Location", f.cfg.prefix+"/v1/jobs/"+j.id)
	}
	writeJSON(w, code, "application/json", f.statusBody(j))
}

func (f *fakeJobgate) statusBody(j *fakeJob) fakeStatus {
	b := fakeStatus{
		ID: j.id, Kind: j.kind, State: j.state, CreatedAt: j.createdAt, UpdatedAt: j.updatedAt, Attempt: 1,
		StatusURL: f.cfg.prefix + "/v1/jobs/" + j.id, StartedAt: timeOrNil(j.startedAt), CompletedAt: timeOrNil(j.completedAt),
		Error: j.failure,
	}
	if !terminal(j.state) {
		b.EstimatedCompletion = timeOrNil(j.createdAt.Add(time.Duration(f.cfg.retryAfter) * time.Second))
	}
	if j.total > 0 {
		pct := int(j.current * 100 / j.total)
		b.Progress = &fakeProgress{Percent: &pct, Current: j.current, Total: j.total, Message: fmt.Sprintf("%d of %d", j.current, j.total)}
	}
	if j.state == "succeeded" {
		u := f.cfg.prefix + "/v1/jobs/" + j.id + "/result"
		b.ResultURL = &u
	}
	if j.callbackURL != "" {
		b.Callback = map[string]any{"state": "pending", "attempts": 0}
	}
	return b
}

// writeProblem answers with p as problem+json.
func (f *fakeJobgate) writeProblem(w http.ResponseWriter, r *http.Request, p *fakeProblem, retryAfter int) {
	cp := *p
	cp.Type = "https://jobgate.dev/problems/" + p.Type
	cp.Instance = r.URL.Path
	cp.RequestID = w.Header().Get("X-Request-Id")
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, p.Status, "application/problem+json", cp)
}

func writeJSON(w http.ResponseWriter, code int, contentType string, v any) {
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// add creates a job of kind in state, as if submitted, and returns its id.
func (f *fakeJobgate) add(kind, state string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.addLocked(kind, "queued")
	f.setStateLocked(j, state)
	return j.id
}

func (f *fakeJobgate) addLocked(kind, state string) *fakeJob {
	now := time.Now().UTC()
	j := &fakeJob{id: rand.Text(), kind: kind, state: state, createdAt: now, updatedAt: now}
	f.jobs[j.id] = j
	return j
}

// update changes a job as the test says and wakes held requests.
func (f *fakeJobgate) update(id string, change func(j *fakeJob)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	change(j)
	f.changedLocked(j)
}

// finish makes a job succeed.
func (f *fakeJobgate) finish(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setStateLocked(f.jobs[id], "succeeded")
}

// setStateLocked moves j to state, stamping its times (and error).
func (f *fakeJobgate) setStateLocked(j *fakeJob, state string) {
	if j.state == state {
		return
	}
	now := time.Now().UTC()
	if state != "queued" && j.startedAt.IsZero() {
		j.startedAt = now
	}
	if terminal(state) {
		j.completedAt = now
	}
	switch state {
	case "failed":
		j.failure = &fakeProblem{Type: "https://jobgate.dev/problems/job-failed", Title: "The job failed (doomed)", Detail: "it was always going to fail"}
	case "canceled":
		j.failure = &fakeProblem{Type: "https://jobgate.dev/problems/job-canceled", Title: "The job was canceled"}
	}
	j.state = state
	f.changedLocked(j)
}

func (f *fakeJobgate) changedLocked(j *fakeJob) {
	j.version++
	j.updatedAt = time.Now().UTC()
	close(f.changed)
	f.changed = make(chan struct{})
}

// failNext makes the next status requests answer these statuses, each with
// Retry-After: 1.
func (f *fakeJobgate) failNext(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, statuses...)
}

// held is the number of status requests a long-poll holds now.
func (f *fakeJobgate) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holding
}

// received returns the requests received with method whose path (without
// the prefix) is path.
func (f *fakeJobgate) received(method, path string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRequest
	for _, r := range f.requests {
		if r.method == method && r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// etag is weak, as jobgate's are.
func etag(j *fakeJob) string { return fmt.Sprintf(`W/"%s-%d"`, j.id, j.version) }

func terminal(state string) bool {
	return state == "succeeded" || state == "failed" || state == "canceled"
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// parsePrefer reads the Prefer header: wait=N seconds (0 if absent) and
// respond-async.
func parsePrefer(h http.Header) (wait int, async bool) {
	for _, v := range h.Values("Prefer") {
		for _, tok := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(tok), "=")
			switch strings.ToLower(name) {
			case "wait":
				wait, _ = strconv.Atoi(val)
			case "respond-async":
				async = true
			}
		}
	}
	return wait, async
}
