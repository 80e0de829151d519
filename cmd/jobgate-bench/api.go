package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// api is a minimal client of jobgate's HTTP contract, made for measuring:
// one shared keep-alive transport, no redirects followed, bodies drained.
type api struct {
	base string
	hc   *http.Client
}

func newAPI(base string, conns int) *api {
	return &api{base: base, hc: &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// status is the part of a job's status body the bench reads.
type status struct {
	ID      string       `json:"id"`
	State   string       `json:"state"`
	Attempt int          `json:"attempt"`
	Steps   []stepStatus `json:"steps"`
}

// stepStatus is the part of a workflow kind's step the bench reads.
type stepStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	JobID string `json:"jobId"`
}

// step is the step named name.
func (s status) step(name string) (stepStatus, bool) {
	for _, st := range s.Steps {
		if st.Name == name {
			return st, true
		}
	}
	return stepStatus{}, false
}

func (s status) terminal() bool {
	return s.State == "succeeded" || s.State == "failed" || s.State == "canceled"
}

// httpError is an unexpected HTTP answer.
type httpError struct {
	Code int
	Body string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// send makes a request: body, when set, as JSON, and header's fields.
func (a *api) send(ctx context.Context, method, path, body string, header map[string]string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header["Content-Type"] = jsonContentType
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return a.hc.Do(req)
}

var jsonContentType = []string{"application/json"}

func (a *api) do(ctx context.Context, method, path, body string, header map[string]string, want ...int) (status, http.Header, error) {
	resp, err := a.send(ctx, method, path, body, header)
	if err != nil {
		return status{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return status{}, nil, err
	}
	ok := false
	for _, w := range want {
		ok = ok || resp.StatusCode == w
	}
	if !ok {
		return status{}, resp.Header, &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	var s status
	if len(b) > 0 {
		if err := json.Unmarshal(b, &s); err != nil {
			return status{}, resp.Header, fmt.Errorf("decode %s %s answer: %w", method, path, err)
		}
	}
	return s, resp.Header, nil
}

// hit makes a request as a load generator does, for the throughput
// windows: it checks the answer's status code (and a 202's Location) and
// reads the body to the end without decoding it, so that the tool's own
// CPU, spent on the same two cores as the server's, stays small. (The raw
// side's SDK client decodes its answers: that is part of an SDK call.)
func (a *api) hit(ctx context.Context, method, path, body string, want int) error {
	resp, err := a.send(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &httpError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	n, err := io.Copy(io.Discard, resp.Body)
	switch {
	case err != nil:
		return err
	case n == 0:
		return fmt.Errorf("%s %s: %d with an empty body", method, path, want)
	case want == http.StatusAccepted && resp.Header.Get("Location") == "":
		return fmt.Errorf("%s %s: 202 without a Location", method, path)
	}
	return nil
}

// sleepBody is a sleep job of secs seconds.
func sleepBody(secs int) string { return fmt.Sprintf(`{"kind":"sleep","input":{"seconds":%d}}`, secs) }

// submit POSTs a job and returns its ID; key, when set, is the
// Idempotency-Key.
func (a *api) submit(ctx context.Context, body, key string) (string, error) {
	id, _, err := a.submitKeyed(ctx, body, key)
	return id, err
}

// submitKeyed is submit that also tells whether the 202 was a replay of
// an earlier submission with the same key (Idempotent-Replayed).
func (a *api) submitKeyed(ctx context.Context, body, key string) (string, bool, error) {
	h := map[string]string{}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	s, hdr, err := a.do(ctx, http.MethodPost, "/v1/jobs", body, h, http.StatusAccepted)
	if err != nil {
		return "", false, err
	}
	if s.ID == "" {
		return "", false, fmt.Errorf("202 without a job id")
	}
	return s.ID, hdr.Get("Idempotent-Replayed") == "true", nil
}

// get reads a job's status.
func (a *api) get(ctx context.Context, id string) (status, error) {
	s, _, err := a.do(ctx, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "", nil, http.StatusOK)
	return s, err
}

// cancel DELETEs a job.
func (a *api) cancel(ctx context.Context, id string) error {
	_, _, err := a.do(ctx, http.MethodDelete, "/v1/jobs/"+id, "", nil, http.StatusAccepted, http.StatusNoContent, http.StatusConflict)
	return err
}
