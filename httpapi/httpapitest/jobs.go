// Package httpapitest runs jobgate's HTTP API over an in-memory job
// service, for tests of the API's handlers and of its clients that need no
// Temporal server: jobs change only when the test says so (Start, Report,
// Succeed, Fail, Cancel…), and any call can be made to fail with the error
// a real service returns (FailNext).
//
// It imitates the job service, not Temporal: the HTTP layer on top of it is
// the real httpapi.Server. Tests of what Temporal records belong in e2e.
package httpapitest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
)

// Jobs is an in-memory job.Service. Its zero value is not usable; call
// NewJobs. It is safe for concurrent use.
type Jobs struct {
	// Service is nil: methods a test never needs (inputs of workflow
	// kinds) panic when called.
	job.Service

	kinds *job.Registry
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	jobs    map[string]*entry
	keys    map[string]string // tenant "\x00" key → id
	order   []string          // ids in submission order
	changed chan struct{}     // closed and replaced on every change
	fail    map[string]error  // method → error of its next call
	seq     int
}

type entry struct {
	j           job.Job
	result      []byte
	contentType string
	filename    string
}

// NewJobs returns an empty service that runs the kinds of reg; finished
// jobs expire after a day.
func NewJobs(reg *job.Registry) *Jobs {
	return &Jobs{
		kinds:   reg,
		ttl:     24 * time.Hour,
		now:     time.Now,
		jobs:    map[string]*entry{},
		keys:    map[string]string{},
		changed: make(chan struct{}),
		fail:    map[string]error{},
	}
}

// Sleep is a kind like jobgate's built-in sleep ({"seconds": n}, 0–86400,
// expected to take n seconds). The fake never runs it.
func Sleep() job.Kind {
	type input struct {
		Seconds int `json:"seconds"`
	}
	return job.Define(job.KindSpec[input]{
		Name:             "sleep",
		Description:      "Waits the given number of seconds.",
		ExpectedDuration: "the given seconds",
		InputSchema:      `{"type":"object","required":["seconds"],"properties":{"seconds":{"type":"integer","minimum":0,"maximum":86400}}}`,
		Plan:             func(in input) job.Plan { return job.Plan{Expected: time.Duration(in.Seconds) * time.Second} },
		Run: func(context.Context, input, job.Reporter) (any, error) {
			return nil, fmt.Errorf("httpapitest runs no work")
		},
	})
}

// Server is an httpapi.Server over a Jobs, on a real HTTP listener.
type Server struct {
	*httptest.Server
	Jobs *Jobs
	API  *httpapi.Server
}

// NewServer starts the HTTP API over a new Jobs running kinds (Sleep when
// none are given) with cfg, and closes it when the test ends.
func NewServer(tb testing.TB, cfg httpapi.Config, kinds ...job.Kind) *Server {
	tb.Helper()
	if len(kinds) == 0 {
		kinds = []job.Kind{Sleep()}
	}
	reg, err := job.NewRegistry(kinds...)
	if err != nil {
		tb.Fatalf("httpapitest: kinds: %v", err)
	}
	jobs := NewJobs(reg)
	api := httpapi.New(jobs, reg, cfg, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(api)
	tb.Cleanup(srv.Close)
	return &Server{Server: srv, Jobs: jobs, API: api}
}

// FailNext makes the next call of method ("Submit", "Get", "OpenResult",
// "Cancel", "Watch", "List", "CountActive", "Ready") return err.
func (f *Jobs) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

func (f *Jobs) takeFailure(method string) error {
	err := f.fail[method]
	delete(f.fail, method)
	return err
}

// Submit accepts a job as the job service does: the kind checks the input,
// one Idempotency-Key is one job per tenant, a key with another request is
// job.ErrKeyReused, MaxActive caps the tenant's queued and running jobs.
func (f *Jobs) Submit(_ context.Context, req job.SubmitRequest) (*job.Job, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("Submit"); err != nil {
		return nil, false, err
	}
	k, err := f.kinds.Check(req.Kind, req.Input)
	if err != nil {
		return nil, false, err
	}
	fp := ""
	if req.IdempotencyKey != "" {
		sum := sha256.Sum256([]byte(req.Kind + "\x00" + string(req.Input) + "\x00" + req.CallbackURL))
		fp = hex.EncodeToString(sum[:])
		if id, ok := f.keys[req.Tenant+"\x00"+req.IdempotencyKey]; ok {
			e := f.jobs[id]
			if e.j.Fingerprint != fp {
				return nil, false, job.ErrKeyReused
			}
			j := e.j
			return &j, false, nil
		}
	}
	if req.MaxActive > 0 {
		if n := f.countActive(req.Tenant); n >= req.MaxActive {
			return nil, false, &job.QuotaError{Active: n, Limit: req.MaxActive}
		}
	}
	f.seq++
	now := f.now()
	j := job.Job{
		ID:                  fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq),
		Tenant:              req.Tenant,
		Kind:                req.Kind,
		State:               job.StateQueued,
		Attempt:             1,
		CreatedAt:           now,
		UpdatedAt:           now,
		EstimatedCompletion: now.Add(k.Plan(req.Input).Expected),
		Fingerprint:         fp,
	}
	if req.CallbackURL != "" {
		j.Callback = &job.Callback{State: job.CallbackPending}
	}
	f.jobs[j.ID] = &entry{j: j}
	f.order = append(f.order, j.ID)
	if req.IdempotencyKey != "" {
		f.keys[req.Tenant+"\x00"+req.IdempotencyKey] = j.ID
	}
	f.notify()
	return &j, true, nil
}

// lookup is the tenant's job id, or the error the service answers.
func (f *Jobs) lookup(tenant, id string) (*entry, error) {
	e, ok := f.jobs[id]
	if !ok || e.j.Tenant != tenant {
		return nil, job.ErrNotFound
	}
	if !e.j.ExpiresAt.IsZero() && !f.now().Before(e.j.ExpiresAt) {
		return nil, job.ErrExpired
	}
	return e, nil
}

// Get returns the job's status.
func (f *Jobs) Get(_ context.Context, tenant, id string) (*job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("Get"); err != nil {
		return nil, err
	}
	e, err := f.lookup(tenant, id)
	if err != nil {
		return nil, err
	}
	j := e.j
	return &j, nil
}

// OpenResult opens a succeeded job's result.
func (f *Jobs) OpenResult(_ context.Context, tenant, id string) (*job.ResultStream, *job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("OpenResult"); err != nil {
		return nil, nil, err
	}
	e, err := f.lookup(tenant, id)
	if err != nil {
		return nil, nil, err
	}
	j := e.j
	if j.State != job.StateSucceeded {
		return nil, nil, &job.NotFinishedError{Job: &j}
	}
	sum := sha256.Sum256(e.result)
	return &job.ResultStream{
		Content:     nopCloser{bytes.NewReader(e.result)},
		Size:        int64(len(e.result)),
		ContentType: e.contentType,
		Filename:    e.filename,
		ModTime:     j.CompletedAt,
		Digest:      hex.EncodeToString(sum[:]),
	}, &j, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// Cancel requests cancellation: a queued or running job becomes
// canceling (Canceled ends it), a canceled one is returned as it is, a
// succeeded or failed one is *job.FinishedError.
func (f *Jobs) Cancel(_ context.Context, tenant, id string) (*job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("Cancel"); err != nil {
		return nil, err
	}
	e, err := f.lookup(tenant, id)
	if err != nil {
		return nil, err
	}
	switch e.j.State {
	case job.StateSucceeded, job.StateFailed:
		j := e.j
		return nil, &job.FinishedError{Job: &j}
	case job.StateQueued, job.StateRunning:
		e.j.State = job.StateCanceling
		e.j.UpdatedAt = f.now()
		f.notify()
	}
	j := e.j
	return &j, nil
}

// Watch returns the job once its version differs from version or it has
// finished, or its current status when ctx ends.
func (f *Jobs) Watch(ctx context.Context, tenant, id, version string) (*job.Job, error) {
	f.mu.Lock()
	if err := f.takeFailure("Watch"); err != nil {
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	for {
		f.mu.Lock()
		e, err := f.lookup(tenant, id)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		j, changed := e.j, f.changed
		f.mu.Unlock()
		if j.Version() != version || j.State.Terminal() {
			return &j, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return &j, nil
		}
	}
}

// Await returns the job once it has finished, or its current status when
// ctx ends.
func (f *Jobs) Await(ctx context.Context, tenant string, last *job.Job) (*job.Job, error) {
	j := last
	for !j.State.Terminal() && ctx.Err() == nil {
		next, err := f.Watch(ctx, tenant, last.ID, j.Version())
		if err != nil {
			return nil, err
		}
		j = next
	}
	return j, nil
}

// List returns the tenant's jobs matching filter, newest first; the cursor
// is the position of the next page.
func (f *Jobs) List(_ context.Context, tenant string, filter job.ListFilter) (*job.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("List"); err != nil {
		return nil, err
	}
	var all []job.Job
	for i := len(f.order) - 1; i >= 0; i-- {
		j := f.jobs[f.order[i]].j
		if j.Tenant == tenant && (filter.State == "" || j.State == filter.State) && (filter.Kind == "" || j.Kind == filter.Kind) {
			// As the engine's listings: what visibility keeps, the rest
			// named unknown (left out of the listing).
			j.Unknown = job.FieldCallback
			if j.State != job.StateQueued && j.State != job.StateScheduled {
				j.Unknown |= job.FieldAttempt | job.FieldStartedAt | job.FieldProgress | job.FieldRetry
			}
			if j.State == job.StateFailed {
				j.Unknown |= job.FieldFailure
			}
			all = append(all, j)
		}
	}
	start := 0
	if filter.Cursor != "" {
		n, err := strconv.Atoi(filter.Cursor)
		if err != nil || n < 0 || n > len(all) {
			return nil, &job.InvalidCursorError{Reason: "it is not a cursor of this listing"}
		}
		start = n
	}
	end := min(start+filter.Limit, len(all))
	page := &job.Page{}
	for i := start; i < end; i++ {
		j := all[i]
		page.Jobs = append(page.Jobs, &j)
	}
	if end < len(all) {
		page.NextCursor = strconv.Itoa(end)
	}
	return page, nil
}

// CountActive counts the tenant's queued and running jobs.
func (f *Jobs) CountActive(_ context.Context, tenant string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailure("CountActive"); err != nil {
		return 0, err
	}
	return f.countActive(tenant), nil
}

func (f *Jobs) countActive(tenant string) int {
	n := 0
	for _, e := range f.jobs {
		if e.j.Tenant == tenant && (e.j.State == job.StateQueued || e.j.State == job.StateRunning) {
			n++
		}
	}
	return n
}

// Ready answers nil unless FailNext("Ready", …) said otherwise.
func (f *Jobs) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.takeFailure("Ready")
}

// notify wakes the watchers; f.mu is held.
func (f *Jobs) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// update changes job id with fn and wakes its watchers; it panics for an
// unknown id, a test's mistake.
func (f *Jobs) update(id string, fn func(j *job.Job, e *entry)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.jobs[id]
	if !ok {
		panic("httpapitest: no job " + id)
	}
	fn(&e.j, e)
	e.j.UpdatedAt = f.now()
	f.notify()
}

// Job returns a copy of job id as the service holds it.
func (f *Jobs) Job(id string) job.Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jobs[id].j
}

// IDs lists every job's id in submission order.
func (f *Jobs) IDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

// Start makes job id running, as a worker that picked it up.
func (f *Jobs) Start(id string) {
	f.update(id, func(j *job.Job, _ *entry) {
		j.State = job.StateRunning
		j.StartedAt = f.now()
	})
}

// Report sets job id's progress.
func (f *Jobs) Report(id string, p job.Progress) {
	f.update(id, func(j *job.Job, _ *entry) { j.Progress = &p })
}

// Succeed ends job id with result, encoded as JSON.
func (f *Jobs) Succeed(id string, result any) {
	data, err := json.Marshal(result)
	if err != nil {
		panic("httpapitest: result: " + err.Error())
	}
	f.SucceedWith(id, data, "application/json", "")
}

// SucceedWith ends job id with a result of the given content type and,
// for a file, name.
func (f *Jobs) SucceedWith(id string, result []byte, contentType, filename string) {
	f.finish(id, job.StateSucceeded, nil, func(e *entry) {
		e.result, e.contentType, e.filename = result, contentType, filename
	})
}

// Fail ends job id failed, with the reason typ and message.
func (f *Jobs) Fail(id, typ, message string) {
	f.finish(id, job.StateFailed, &job.Failure{Type: typ, Message: message}, nil)
}

// Canceled ends job id canceled.
func (f *Jobs) Canceled(id string) {
	f.finish(id, job.StateCanceled, &job.Failure{Type: "canceled", Message: "The job was canceled."}, nil)
}

// Expire makes job id's result expired: it answers job.ErrExpired.
func (f *Jobs) Expire(id string) {
	f.update(id, func(j *job.Job, _ *entry) { j.ExpiresAt = f.now().Add(-time.Second) })
}

func (f *Jobs) finish(id string, state job.State, failure *job.Failure, fn func(*entry)) {
	f.update(id, func(j *job.Job, e *entry) {
		now := f.now()
		if j.StartedAt.IsZero() && state != job.StateCanceled {
			j.StartedAt = now
		}
		j.State, j.Error, j.CompletedAt, j.ExpiresAt = state, failure, now, now.Add(f.ttl)
		if j.Progress != nil && state == job.StateSucceeded {
			// A copy: readers hold copies of the job that share the old one.
			p := *j.Progress
			p.Current = p.Total
			j.Progress = &p
		}
		if fn != nil {
			fn(e)
		}
	})
}
