package activities

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/job"
)

// HTTPRequestInput is the input of the http.request kind.
type HTTPRequestInput struct {
	// Method is the HTTP method (default GET).
	Method string `json:"method,omitempty"`
	// URL is the absolute http or https URL to call.
	URL string `json:"url"`
	// Headers are sent with the request.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent as is when it is a JSON string, and as JSON otherwise.
	Body json.RawMessage `json:"body,omitempty"`
	// TimeoutSeconds bounds one attempt (1 to 600, default 30).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// MaxAttempts bounds the attempts, the first included (1 to 20, default 5).
	MaxAttempts int `json:"maxAttempts,omitempty"`
}

// HTTPResponse is the result of the http.request kind: the response of the
// last attempt. Body is the JSON body when the response is JSON, a string
// when it is UTF-8 text, and base64 (with BodyEncoding "base64") otherwise.
type HTTPResponse struct {
	Status       int                 `json:"status"`
	Headers      map[string][]string `json:"headers"`
	Body         json.RawMessage     `json:"body"`
	BodyEncoding string              `json:"bodyEncoding,omitempty"`
}

const (
	defaultHTTPTimeout     = 30
	maxHTTPTimeout         = 600
	defaultHTTPMaxAttempts = 5
	maxHTTPAttempts        = 20
	maxRetryAfter          = 10 * time.Minute
)

// httpRequestSchema is the JSON Schema of one HTTP request, the input of
// http.request and an item of batch.http.
const httpRequestSchema = `{"type":"object","additionalProperties":false,"required":["url"],"properties":{` +
	`"method":{"type":"string","pattern":"^[A-Z]+$","default":"GET"},` +
	`"url":{"type":"string","format":"uri","pattern":"^https?://"},` +
	`"headers":{"type":"object","additionalProperties":{"type":"string"}},` +
	`"body":{},` +
	`"timeoutSeconds":{"type":"integer","minimum":1,"maximum":600,"default":30},` +
	`"maxAttempts":{"type":"integer","minimum":1,"maximum":20,"default":5}}}`

// HTTPRequest is the http.request kind: one durable outbound HTTP call.
// Network errors, 5xx and 429 answers are retried with exponential backoff
// (honouring the server's Retry-After); any other answer, 4xx included, is
// the job's result. Destinations are checked by out.
func HTTPRequest(out Outbound) job.Kind {
	client := out.client()
	return job.Define(job.KindSpec[HTTPRequestInput]{
		Name:             "http.request",
		Description:      "Sends one HTTP request, retrying network errors, 5xx and 429 with backoff; the result is the response.",
		ExpectedDuration: "about 2 seconds; longer while the target fails and the call is retried",
		InputSchema:      httpRequestSchema,
		Validate:         validateHTTPRequest,
		Plan: func(in HTTPRequestInput) job.Plan {
			timeout := time.Duration(orDefault(in.TimeoutSeconds, defaultHTTPTimeout)) * time.Second
			return job.Plan{
				Expected: 2 * time.Second,
				// The activity's own limit leaves room to read the body.
				Timeout: timeout + 30*time.Second,
				Retry: job.RetryPolicy{
					InitialInterval:    time.Second,
					BackoffCoefficient: 2,
					MaximumInterval:    time.Minute,
					MaximumAttempts:    orDefault(in.MaxAttempts, defaultHTTPMaxAttempts),
				},
			}
		},
		Run: func(ctx context.Context, in HTTPRequestInput, report job.Reporter) (any, error) {
			return doHTTPRequest(ctx, client, out.maxResponseBytes(), in, report)
		},
	})
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func validateHTTPRequest(in HTTPRequestInput) []job.FieldError {
	var errs []job.FieldError
	if in.Method != "" && (strings.ToUpper(in.Method) != in.Method || strings.ContainsFunc(in.Method, func(r rune) bool { return r < 'A' || r > 'Z' })) {
		errs = append(errs, job.FieldError{Field: "/input/method", Message: "must be an upper-case HTTP method such as GET or POST"})
	}
	u, err := url.Parse(in.URL)
	switch {
	case in.URL == "":
		errs = append(errs, job.FieldError{Field: "/input/url", Message: "is required"})
	case err != nil || !u.IsAbs() || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, job.FieldError{Field: "/input/url", Message: "must be an absolute http:// or https:// URL"})
	case u.User != nil:
		errs = append(errs, job.FieldError{Field: "/input/url", Message: "must not carry credentials; send them in headers"})
	}
	for name := range in.Headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			errs = append(errs, job.FieldError{Field: "/input/headers", Message: fmt.Sprintf("invalid header name %q", name)})
		}
	}
	for name, v := range in.Headers {
		if strings.ContainsAny(v, "\r\n") {
			errs = append(errs, job.FieldError{Field: "/input/headers/" + name, Message: "must not contain line breaks"})
		}
	}
	if in.TimeoutSeconds < 0 || in.TimeoutSeconds > maxHTTPTimeout {
		errs = append(errs, job.FieldError{Field: "/input/timeoutSeconds", Message: fmt.Sprintf("must be between 1 and %d", maxHTTPTimeout)})
	}
	if in.MaxAttempts < 0 || in.MaxAttempts > maxHTTPAttempts {
		errs = append(errs, job.FieldError{Field: "/input/maxAttempts", Message: fmt.Sprintf("must be between 1 and %d", maxHTTPAttempts)})
	}
	return errs
}

func doHTTPRequest(ctx context.Context, client *http.Client, limit int64, in HTTPRequestInput, report job.Reporter) (*HTTPResponse, error) {
	method := in.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	contentType := ""
	if len(in.Body) > 0 && string(in.Body) != "null" {
		var s string
		if json.Unmarshal(in.Body, &s) == nil {
			body = strings.NewReader(s)
		} else {
			body = bytes.NewReader(in.Body)
			contentType = "application/json"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(orDefault(in.TimeoutSeconds, defaultHTTPTimeout))*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, in.URL, body)
	if err != nil {
		return nil, job.Permanent("invalid-request", fmt.Errorf("build request: %w", err))
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("User-Agent", "jobgate")

	report(job.Progress{Current: 0, Total: 1, Message: method + " " + logURL(req.URL)})
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, ErrDestinationRefused) {
			return nil, job.Permanent("destination-refused", describe(err))
		}
		if headersTooLarge(err) {
			return nil, job.Permanent("response-too-large", fmt.Errorf("%s %s: the response's headers are over the %d-byte limit", method, logURL(req.URL), limit))
		}
		if contextDone(ctx) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s %s: %w", method, logURL(req.URL), describe(err))
	}
	defer resp.Body.Close()
	// The result holds the headers as well as the body: both count.
	headers := headerBytes(resp.Header)
	if headers > limit {
		return nil, job.Permanent("response-too-large", fmt.Errorf("%s %s: the response's headers (%d bytes of names and values) are over the %d-byte limit", method, logURL(req.URL), headers, limit))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit-headers+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, logURL(req.URL), describe(err))
	}
	if int64(len(data)) > limit-headers {
		return nil, job.Permanent("response-too-large", fmt.Errorf("%s %s: the response (%d bytes of headers, and a body of more than %d) is over the %d-byte limit", method, logURL(req.URL), headers, limit-headers, limit))
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		msg := fmt.Sprintf("%s %s: server answered %s", method, logURL(req.URL), resp.Status)
		opts := temporal.ApplicationErrorOptions{}
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			opts.NextRetryDelay = d
		}
		return nil, temporal.NewApplicationErrorWithOptions(msg, "http-"+strconv.Itoa(resp.StatusCode), opts)
	}
	report(job.Progress{Current: 1, Total: 1, Message: fmt.Sprintf("%s %s: %d", method, logURL(req.URL), resp.StatusCode)})
	out := &HTTPResponse{Status: resp.StatusCode, Headers: resp.Header}
	out.Body, out.BodyEncoding = encodeBody(resp.Header.Get("Content-Type"), data)
	return out, nil
}

// headerBytes is the size of a response's headers as its result holds
// them: every name and value.
func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// headersTooLarge reports whether err is the transport refusing response
// headers over its MaxResponseHeaderBytes (HTTP/1 or HTTP/2), which
// net/http reports by message only.
func headersTooLarge(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "server response headers exceeded") || strings.Contains(msg, "header list larger than advertised limit")
}

// encodeBody represents a response body in the JSON result.
func encodeBody(contentType string, data []byte) (json.RawMessage, string) {
	if len(data) == 0 {
		return json.RawMessage(`""`), ""
	}
	if strings.Contains(contentType, "json") && json.Valid(data) {
		return json.RawMessage(data), ""
	}
	if utf8.Valid(data) {
		s, _ := json.Marshal(string(data))
		return s, ""
	}
	s, _ := json.Marshal(base64.StdEncoding.EncodeToString(data))
	return s, "base64"
}

// retryAfter parses a Retry-After value (seconds or an HTTP date), capped.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}
