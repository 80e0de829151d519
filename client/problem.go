package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors for the kinds of answers a caller handles differently.
// Every error answer is a *Problem, and errors.Is(err, ErrX) reports whether
// its HTTP status is of that kind.
var (
	// ErrNotFound matches 404: there is no such job for this caller (or it
	// left the server's retention).
	ErrNotFound = errors.New("jobgate: not found")
	// ErrGone matches 410: the job finished longer ago than the server
	// keeps results; submit it again if it is still needed.
	ErrGone = errors.New("jobgate: gone")
	// ErrConflict matches 409: the result of a job that has not succeeded,
	// or the cancellation of a finished job.
	ErrConflict = errors.New("jobgate: conflict")
	// ErrRateLimited matches 429: the caller is over its rate or its quota
	// of active jobs; retry after Problem.RetryAfter.
	ErrRateLimited = errors.New("jobgate: rate limited")
	// ErrUnavailable matches 503: the server cannot reach its job engine or
	// its queue is full; retry after Problem.RetryAfter.
	ErrUnavailable = errors.New("jobgate: unavailable")
	// ErrInvalid matches 400 and 422: the request is malformed, or names an
	// unknown kind, or its input fails the kind's rules (Problem.Errors says
	// which fields), or reuses an Idempotency-Key for another request.
	ErrInvalid = errors.New("jobgate: invalid request")
)

// Problem is an error answer of the server, an RFC 9457 problem details
// object with jobgate's extension members. An answer that is not
// application/problem+json (say, a proxy's 502 page) becomes a Problem with
// only Status, Title (the status text), RequestID and RetryAfter set.
//
// A Problem is also how a failed or canceled job says why it ended
// (Job.Error, Problem.JobError); those carry no Status.
type Problem struct {
	// Type is a URI naming the kind of problem
	// ("https://jobgate.dev/problems/not-found").
	Type string `json:"type"`
	// Title is a short human-readable summary of the kind of problem.
	Title string `json:"title"`
	// Status is the HTTP status code of the answer.
	Status int `json:"status,omitempty"`
	// Detail explains this occurrence of the problem.
	Detail string `json:"detail,omitempty"`
	// Instance is the path of the request that failed.
	Instance string `json:"instance,omitempty"`
	// Errors lists what is wrong with which field of the request.
	Errors []FieldError `json:"errors,omitempty"`
	// JobID is the job the problem is about, when there is one.
	JobID string `json:"jobId,omitempty"`
	// State is that job's state.
	State State `json:"state,omitempty"`
	// StatusURL is that job's status monitor.
	StatusURL string `json:"statusUrl,omitempty"`
	// RequestID identifies the request in the server's logs (the body's
	// requestId, or the X-Request-Id header).
	RequestID string `json:"requestId,omitempty"`
	// JobError is a failed or canceled job's own error, when the problem
	// is that the job has no result.
	JobError *Problem `json:"error,omitempty"`
	// RetryAfter is how long the server asked the caller to wait before
	// trying again (Retry-After); zero when it did not say.
	RetryAfter time.Duration `json:"-"`
}

// FieldError is what is wrong with one field of a request.
type FieldError struct {
	// Field is a JSON pointer into the request body ("/input/seconds").
	Field string `json:"field"`
	// Message says what is wrong and what is expected.
	Message string `json:"message"`
}

// Error describes the problem in one line: status, title, detail and, for
// field errors, the fields.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString("jobgate: ")
	if p.Status != 0 {
		b.WriteString(strconv.Itoa(p.Status) + " ")
	}
	b.WriteString(p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for i, f := range p.Errors {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Field + ": " + f.Message)
		if i == len(p.Errors)-1 {
			b.WriteString(")")
		}
	}
	if p.RequestID != "" {
		b.WriteString(" [request " + p.RequestID + "]")
	}
	return b.String()
}

// Is reports whether the problem's HTTP status is of the kind target names:
// ErrNotFound (404), ErrGone (410), ErrConflict (409), ErrRateLimited
// (429), ErrUnavailable (503) or ErrInvalid (400, 422). It makes errors.Is
// work on a *Problem.
func (p *Problem) Is(target error) bool {
	if p == nil {
		return false
	}
	switch target {
	case ErrNotFound:
		return p.Status == http.StatusNotFound
	case ErrGone:
		return p.Status == http.StatusGone
	case ErrConflict:
		return p.Status == http.StatusConflict
	case ErrRateLimited:
		return p.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return p.Status == http.StatusServiceUnavailable
	case ErrInvalid:
		return p.Status == http.StatusBadRequest || p.Status == http.StatusUnprocessableEntity
	}
	return false
}

// problemFrom turns an error answer into a *Problem and closes its body.
// Status is the answer's HTTP status, whatever the body says (RFC 9457 makes
// the body's member advisory).
func problemFrom(resp *http.Response) *Problem {
	defer drainClose(resp.Body)
	p := &Problem{}
	if mediaType(resp.Header.Get("Content-Type")) == "application/problem+json" {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		if err != nil || json.Unmarshal(data, p) != nil {
			p = &Problem{}
		}
	}
	p.Status = resp.StatusCode
	if p.Title == "" {
		p.Title = http.StatusText(resp.StatusCode)
		if p.Title == "" {
			p.Title = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
	}
	if p.RequestID == "" {
		p.RequestID = resp.Header.Get("X-Request-Id")
	}
	p.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return p
}
