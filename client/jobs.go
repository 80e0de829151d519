package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SubmitRequest is a job to submit.
type SubmitRequest struct {
	// Kind names a registered job kind ("sleep", "http.request").
	Kind string
	// Input is the kind's input, marshalled to JSON; a json.RawMessage is
	// sent as it is. Nil sends no input.
	Input any
	// CallbackURL, when set, is where the server POSTs a webhook when the
	// job ends.
	CallbackURL string
	// IdempotencyKey, when set, makes the submission safe to retry: the
	// same key with the same request is the same job (Job.Replayed).
	IdempotencyKey string
	// Wait, when positive, asks the server to hold the request until the
	// job ends, up to Wait (Prefer: wait, whole seconds rounded up), so a
	// short job costs one round trip.
	Wait time.Duration
	// RespondAsync asks the server to answer 202 at once (Prefer:
	// respond-async).
	RespondAsync bool
	// RunAt, when set, starts the job at that time rather than now (the
	// job is StateScheduled until then); Delay, when positive, that long
	// from now (whole seconds, rounded up). Set at most one.
	RunAt time.Time
	Delay time.Duration
	// Priority is 1 (dispatched first) to 5 (last); 0 leaves the server's
	// default, 3.
	Priority int
}

// submitBody is the body of POST /v1/jobs.
type submitBody struct {
	Kind         string     `json:"kind"`
	Input        any        `json:"input,omitempty"`
	CallbackURL  string     `json:"callbackUrl,omitempty"`
	RunAt        *time.Time `json:"runAt,omitempty"`
	DelaySeconds int64      `json:"delaySeconds,omitempty"`
	Priority     int        `json:"priority,omitempty"`
}

// Submit submits a job and returns it as the server accepted it: queued
// (202), or, when req.Wait let the server hold the request until the job
// ended, succeeded (the 303 to the result is not followed; the status is)
// or failed or canceled (200). A job that ended without succeeding is not an
// error: check Job.State and Job.Error.
//
// It returns a *Problem for an error answer (ErrInvalid for a bad request,
// unknown kind, invalid input or reused Idempotency-Key; ErrRateLimited;
// ErrUnavailable), ctx.Err() when ctx ends, or a transport error.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (*Job, error) {
	sb := submitBody{Kind: req.Kind, Input: req.Input, CallbackURL: req.CallbackURL, Priority: req.Priority}
	if !req.RunAt.IsZero() {
		sb.RunAt = &req.RunAt
	}
	if req.Delay > 0 {
		sb.DelaySeconds = int64((req.Delay + time.Second - 1) / time.Second)
	}
	body, err := json.Marshal(sb)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: encoding the input of a %q job as JSON: %w", req.Kind, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if req.IdempotencyKey != "" {
		h.Set("Idempotency-Key", req.IdempotencyKey)
	}
	var prefer []string
	if req.RespondAsync {
		prefer = append(prefer, "respond-async")
	}
	if req.Wait > 0 {
		prefer = append(prefer, preferWait(req.Wait))
	}
	if len(prefer) > 0 {
		h.Set("Prefer", strings.Join(prefer, ", "))
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: "v1/jobs", header: h, body: body, wait: max(req.Wait, 0)})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusSeeOther:
		return c.followSucceeded(ctx, resp)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return decodeJob(resp)
	}
	return nil, problemFrom(resp)
}

// followSucceeded turns a submission's 303 to the result into the succeeded
// job: from the answer's status body when it has one, else by reading the
// status of the job its Location names.
func (c *Client) followSucceeded(ctx context.Context, resp *http.Response) (*Job, error) {
	var id string
	if isJSON(mediaType(resp.Header.Get("Content-Type"))) {
		if j, err := decodeJob(resp); err == nil {
			if j.ID != "" && j.State == StateSucceeded {
				return j, nil
			}
			id = j.ID
		}
	} else {
		drainClose(resp.Body)
	}
	if id == "" {
		var err error
		if id, err = c.jobIDFromLocation(resp.Header.Get("Location")); err != nil {
			return nil, err
		}
	}
	j, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var replayed Job
	readHeaders(&replayed, resp.Header)
	j.Replayed = replayed.Replayed
	return j, nil
}

// Get returns the job's current status. It asks with ?redirect=false, so a
// succeeded job's status comes back rather than a redirect to its result.
//
// It returns a *Problem for an error answer (ErrNotFound for an unknown job,
// ErrGone for an expired one, ErrUnavailable), ctx.Err() when ctx ends, or a
// transport error.
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	a, err := c.status(ctx, id, "", 0)
	if err != nil {
		return nil, err
	}
	return a.job, nil
}

// GetIfChanged returns the job's status if it changed since the version
// etag names (a Job.ETag): it sends If-None-Match, and a 304 Not Modified
// answer returns a nil Job and changed false. An empty etag always fetches
// the status.
//
// It returns the errors Get returns.
func (c *Client) GetIfChanged(ctx context.Context, id, etag string) (j *Job, changed bool, err error) {
	a, err := c.status(ctx, id, etag, 0)
	if err != nil {
		return nil, false, err
	}
	if a.notModified {
		return nil, false, nil
	}
	return a.job, true, nil
}

// statusAnswer is the server's answer to a status request.
type statusAnswer struct {
	job         *Job
	notModified bool // 304
	// waitApplied is true when the server says it long-polled
	// (Preference-Applied: wait=N), and appliedWait is that N, which may be
	// less than asked for: servers cap it.
	waitApplied bool
	appliedWait time.Duration
}

// status asks for a job's status, conditionally (etag) and long-polled
// (wait) when those are set.
func (c *Client) status(ctx context.Context, id, etag string, wait time.Duration) (statusAnswer, error) {
	path, err := jobPath(id)
	if err != nil {
		return statusAnswer{}, err
	}
	h := http.Header{}
	if etag != "" {
		h.Set("If-None-Match", etag)
	}
	if wait > 0 {
		h.Set("Prefer", preferWait(wait))
	}
	resp, err := c.do(ctx, request{
		method: http.MethodGet,
		path:   path,
		query:  url.Values{"redirect": {"false"}},
		header: h,
		wait:   wait,
	})
	if err != nil {
		return statusAnswer{}, err
	}
	var a statusAnswer
	a.appliedWait, a.waitApplied = appliedWait(resp.Header)
	switch {
	case resp.StatusCode == http.StatusNotModified:
		drainClose(resp.Body)
		a.notModified = true
		return a, nil
	case resp.StatusCode == http.StatusSeeOther && !isJSON(mediaType(resp.Header.Get("Content-Type"))):
		// A server that redirects despite redirect=false, without the
		// status body: all it says is that the job succeeded.
		drainClose(resp.Body)
		a.job = &Job{ID: id, State: StateSucceeded, ResultURL: resp.Header.Get("Location")}
		readHeaders(a.job, resp.Header)
		return a, nil
	case resp.StatusCode == http.StatusSeeOther || (resp.StatusCode >= 200 && resp.StatusCode < 300):
		if a.job, err = decodeJob(resp); err != nil && ctx.Err() != nil {
			return statusAnswer{}, ctx.Err()
		}
		return a, err
	}
	return statusAnswer{}, problemFrom(resp)
}

// Wait returns the job once it has ended (succeeded, failed or canceled; a
// job that did not succeed is not an error: check Job.State).
//
// It long-polls: each status request asks the server to hold it until the
// job changes, up to the long-poll time (WithLongPoll, default 30s), and is
// repeated at once when the server did hold it. A server that answers at
// once (one that does not long-poll) is polled again after the Retry-After
// it gave (1s if it gave none, 60s at most). Answers 503 and 429 are retried
// after their Retry-After, for as long as ctx lets it: give ctx a deadline
// to bound the wait.
//
// It returns ctx.Err() as soon as ctx ends, a *Problem for any other error
// answer (ErrNotFound, ErrGone), or a transport error.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	return c.waitUntil(ctx, id, func(j *Job) bool { return j.State.Terminal() })
}

// WaitOrInput is Wait that also returns, with the job still running, as
// soon as the job waits for an input (Job.WaitingFor is not empty): deliver
// it with SendInput, then wait again.
func (c *Client) WaitOrInput(ctx context.Context, id string) (*Job, error) {
	return c.waitUntil(ctx, id, func(j *Job) bool { return j.State.Terminal() || len(j.WaitingFor) > 0 })
}

func (c *Client) waitUntil(ctx context.Context, id string, done func(*Job) bool) (*Job, error) {
	var last *Job
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		a, err := c.status(ctx, id, "", c.longPoll)
		// held: the server kept the request for the whole long-poll (as
		// asked, or as long as it said it would), so it long-polls and
		// the next request will be held too.
		elapsed := time.Since(start)
		held := c.longPoll > 0 && (elapsed >= c.longPoll || (a.waitApplied && a.appliedWait > 0 && elapsed >= a.appliedWait))
		var delay time.Duration
		switch {
		case err != nil:
			var p *Problem
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !errors.As(err, &p) || (p.Status != http.StatusServiceUnavailable && p.Status != http.StatusTooManyRequests) {
				return nil, err
			}
			delay = pollDelay(p.RetryAfter)
		case a.job == nil:
			// 304 to a request that was not conditional: nothing new.
			if !held {
				delay = pollDelay(0)
			}
		case done(a.job):
			return a.job, nil
		case held, c.longPoll > 0 && a.waitApplied && !sameStatus(last, a.job):
			// The server held the request until the job changed or the
			// long-poll ran out: ask again at once. (A server that claims
			// to have waited while answering at once with nothing new is
			// treated as one that does not long-poll.)
		default:
			delay = pollDelay(a.job.RetryAfter)
		}
		if a.job != nil {
			last = a.job
		}
		if delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
		}
	}
}

// Cancel asks the server to cancel the job and returns its status: 202 with
// the job canceling (or already canceled); for 204, the job was already
// canceled, and Cancel reads its status with Get (when that fails it returns
// a Job with only ID and State canceled, since the cancellation itself is
// certain).
//
// It returns a *Problem for an error answer (ErrConflict when the job
// already succeeded or failed, ErrNotFound, ErrGone), ctx.Err() when ctx
// ends, or a transport error.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	path, err := jobPath(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: path})
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNoContent:
		drainClose(resp.Body)
		if j, err := c.Get(ctx, id); err == nil && j.State == StateCanceled {
			return j, nil
		}
		return &Job{ID: id, State: StateCanceled}, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return decodeJob(resp)
	}
	return nil, problemFrom(resp)
}

// SendInput delivers the input called name, body encoded as JSON, to the
// running job id, which waits for it (Job.WaitingFor), and returns the
// job's status once the job has taken it. key, when not empty, is the
// delivery's Idempotency-Key: a retry with the same key is taken once.
//
// It returns a *Problem for an error answer: ErrNotFound (no such job, or
// no such input for its kind), ErrConflict (the job is not waiting for it
// now, or has ended), 422 for a body the input's schema or the job refuses;
// ctx.Err() when ctx ends, or a transport error.
func (c *Client) SendInput(ctx context.Context, id, name string, body any, key string) (*Job, error) {
	path, err := jobPath(id)
	if err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "/?#") {
		return nil, fmt.Errorf("jobgate client: %q is not an input name", name)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: encoding input %q: %w", name, err)
	}
	header := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		header.Set("Idempotency-Key", key)
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: path + "/inputs/" + url.PathEscape(name), body: data, header: header})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return decodeJob(resp)
	}
	return nil, problemFrom(resp)
}
