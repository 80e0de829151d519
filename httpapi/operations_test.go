package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
	"github.com/jobgate/jobgate/job"
)

// azurePoller follows the long-running-operation algorithm that Azure's
// SDKs share (azcore's runtime.Poller; the Azure REST API guidelines,
// "Long-running operations"), reduced to what decides its outcome:
//
//  1. The initial answer is 201 or 202. Of its headers, Azure-AsyncOperation
//     wins, then Operation-Location, then Location. The poll URL must be an
//     absolute URL.
//  2. With Operation-Location, GET the poll URL; a non-2xx answer is an
//     error. The body's "status" is terminal when it is Succeeded, Failed
//     or Canceled (case-insensitively, Cancelled too); anything else
//     (NotStarted, Running, …) means poll again, after the answer's
//     Retry-After seconds when it has one.
//     (With only Location, the poller instead polls until the answer is not
//     202, and any 200 means done: why jobgate sends Operation-Location.)
//  3. Succeeded: GET the body's resourceLocation if present, else (for a
//     POST) the initial Location; that answer is the result. Failed or
//     Canceled: the operation's error.
type azurePoller struct {
	http *http.Client
	// sleep waits between polls; tests record the delays instead.
	sleep func(time.Duration)
	// polled receives every status read, in order.
	polled func(status string)
}

type lroError struct {
	Status string
	Code   string
	Msg    string
}

func (e *lroError) Error() string { return e.Status + ": " + e.Code + ": " + e.Msg }

// run follows the operation that initial (the answer to a POST) started
// and returns the final result's body.
func (p *azurePoller) run(initial *http.Response) ([]byte, error) {
	defer initial.Body.Close()
	if initial.StatusCode != http.StatusAccepted && initial.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("not a long-running operation: %d", initial.StatusCode)
	}
	pollURL := initial.Header.Get("Azure-AsyncOperation")
	if pollURL == "" {
		pollURL = initial.Header.Get("Operation-Location")
	}
	if pollURL == "" {
		return nil, errors.New("no Operation-Location: this poller would fall back to Location and stop at the first 200")
	}
	if u, err := url.Parse(pollURL); err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("invalid Operation-Location URL %q", pollURL)
	}
	location := initial.Header.Get("Location")
	for {
		resp, err := p.http.Get(pollURL)
		if err != nil {
			return nil, err
		}
		var op struct {
			Status           string `json:"status"`
			ResourceLocation string `json:"resourceLocation"`
			Error            *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&op)
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, fmt.Errorf("poll answered %d", resp.StatusCode)
		}
		if err != nil {
			return nil, fmt.Errorf("poll body: %w", err)
		}
		p.polled(op.Status)
		switch strings.ToLower(op.Status) {
		case "succeeded":
			final := op.ResourceLocation
			if final == "" {
				final = location
			}
			res, err := p.http.Get(final)
			if err != nil {
				return nil, err
			}
			defer res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("final GET answered %d", res.StatusCode)
			}
			return io.ReadAll(res.Body)
		case "failed", "canceled", "cancelled":
			e := &lroError{Status: op.Status}
			if op.Error != nil {
				e.Code, e.Msg = op.Error.Code, op.Error.Message
			}
			return nil, e
		}
		delay := 30 * time.Second // azcore's default poll frequency
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			delay = time.Duration(s) * time.Second
		}
		p.sleep(delay)
	}
}

// A poller that follows Azure's algorithm reports the job running while it
// runs (NotStarted while queued), then the right final state: the result of
// a succeeded job, the error of a failed or canceled one. It honours every
// Retry-After (recorded, not slept: the job moves on at each wait).
func TestOperationLocationWithAzurePoller(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// end finishes the job once the poller has seen it running.
		end        func(srv *httpapitest.Server, id string)
		wantStatus string
		wantResult string
		wantErr    *lroError
	}{
		{
			name:       "succeeded",
			end:        func(srv *httpapitest.Server, id string) { srv.Jobs.Succeed(id, map[string]int{"slept": 5}) },
			wantStatus: "Succeeded",
			wantResult: `{"slept":5}`,
		},
		{
			name: "failed",
			end: func(srv *httpapitest.Server, id string) {
				srv.Jobs.Fail(id, "http-502", "the destination answered 502 Bad Gateway")
			},
			wantStatus: "Failed",
			wantErr:    &lroError{Status: "Failed", Code: "http-502", Msg: "the destination answered 502 Bad Gateway"},
		},
		{
			name: "canceled",
			end: func(srv *httpapitest.Server, id string) {
				req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/jobs/"+id, nil)
				resp, err := srv.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				srv.Jobs.Canceled(id)
			},
			wantStatus: "Canceled",
			wantErr:    &lroError{Status: "Canceled", Code: "canceled", Msg: "The job was canceled."},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httpapitest.NewServer(t, httpapi.Config{})
			resp, err := srv.Client().Post(srv.URL+"/v1/jobs", "application/json", strings.NewReader(`{"kind":"sleep","input":{"seconds":5}}`))
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			id := srv.Jobs.IDs()[0]
			require.Equal(t, "/v1/jobs/"+id, resp.Header.Get("Location"))
			require.Equal(t, srv.URL+"/v1/operations/"+id, resp.Header.Get("Operation-Location"), "Operation-Location is absolute, under the Host the client used")

			var statuses []string
			var waits []time.Duration
			p := &azurePoller{
				http:   srv.Client(),
				polled: func(s string) { statuses = append(statuses, s) },
				sleep: func(d time.Duration) {
					waits = append(waits, d)
					switch len(waits) {
					case 1: // seen queued
						srv.Jobs.Start(id)
						srv.Jobs.Report(id, job.Progress{Current: 2, Total: 5})
					case 2: // seen running
						// What a Location-only poller reads: 200, which it
						// takes for done while the job still runs.
						st, err := srv.Client().Get(srv.URL + "/v1/jobs/" + id)
						require.NoError(t, err)
						st.Body.Close()
						require.Equal(t, http.StatusOK, st.StatusCode)
						tc.end(srv, id)
					}
				},
			}
			result, err := p.run(resp)
			require.Equal(t, []string{"NotStarted", "Running", tc.wantStatus}, statuses)
			require.Len(t, waits, 2)
			for _, w := range waits {
				require.GreaterOrEqual(t, w, time.Second, "Retry-After is at least a second")
				require.LessOrEqual(t, w, 60*time.Second, "Retry-After is at most a minute")
			}
			if tc.wantErr != nil {
				var got *lroError
				require.ErrorAs(t, err, &got)
				require.Equal(t, tc.wantErr, got)
				return
			}
			require.NoError(t, err)
			require.JSONEq(t, tc.wantResult, string(result))
		})
	}
}

func TestOperationMonitor(t *testing.T) {
	t.Parallel()
	srv := httpapitest.NewServer(t, httpapi.Config{PublicURL: "https://jobs.example.com"})
	resp, err := srv.Client().Post(srv.URL+"/v1/jobs", "application/json", strings.NewReader(`{"kind":"sleep","input":{"seconds":5}}`))
	require.NoError(t, err)
	resp.Body.Close()
	id := srv.Jobs.IDs()[0]
	require.Equal(t, "https://jobs.example.com/v1/operations/"+id, resp.Header.Get("Operation-Location"), "under the public URL")

	get := func(path string) (int, http.Header, map[string]any) {
		t.Helper()
		r, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		defer r.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		return r.StatusCode, r.Header, body
	}

	srv.Jobs.Start(id)
	srv.Jobs.Report(id, job.Progress{Current: 1, Total: 4})
	code, h, body := get("/v1/operations/" + id)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Running", body["status"])
	require.Equal(t, id, body["id"])
	require.EqualValues(t, 25, body["percentComplete"])
	require.Nil(t, body["resourceLocation"])
	require.Nil(t, body["error"])
	require.NotEmpty(t, h.Get("Retry-After"))
	require.Equal(t, "no-store", h.Get("Cache-Control"))

	// DELETE answers 202 with Operation-Location too; canceling is Running.
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/jobs/"+id, nil)
	del, err := srv.Client().Do(req)
	require.NoError(t, err)
	del.Body.Close()
	require.Equal(t, http.StatusAccepted, del.StatusCode)
	require.Equal(t, "https://jobs.example.com/v1/operations/"+id, del.Header.Get("Operation-Location"))
	_, _, body = get("/v1/operations/" + id)
	require.Equal(t, "Running", body["status"], "canceling is still running to a poller")

	srv.Jobs.Succeed(id, "done")
	code, h, body = get("/v1/operations/" + id)
	require.Equal(t, http.StatusOK, code, "a finished operation is 200, never 303")
	require.Equal(t, "Succeeded", body["status"])
	require.Equal(t, "https://jobs.example.com/v1/jobs/"+id+"/result", body["resourceLocation"])
	require.Empty(t, h.Get("Retry-After"))
	require.NotEmpty(t, h.Get("Expires"))

	code, h, body = get("/v1/operations/00000000-0000-4000-8000-999999999999")
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "application/problem+json", h.Get("Content-Type"))
	require.Equal(t, httpapi.ProblemBase+"not-found", body["type"])

	srv.Jobs.Expire(id)
	code, _, body = get("/v1/operations/" + id)
	require.Equal(t, http.StatusGone, code)
	require.Equal(t, httpapi.ProblemBase+"expired", body["type"])
}
