package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// rawDo sends a request outside the env's OpenAPI-checking client (the
// answers here are refusals no operation lists), with host as its Host
// header when set, and returns the answer.
func rawDo(tb testing.TB, method, url, host, contentType, body string) response {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(tb, err)
	if host != "" {
		req.Host = host
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return response{Response: resp, Body: data}
}

// Without API keys, a body without a JSON Content-Type is refused (a web
// page can send one with no CORS preflight), and so is a Host that is not
// a loopback name, an IP address or the public URL's host (DNS
// rebinding); with API keys, any Host is served.
func TestLocalModeRefusesWebPages(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, publicURL: "https://jobs.example.com"})
	port := e.URL[strings.LastIndex(e.URL, ":")+1:]
	submit := `{"kind":"sleep","input":{"seconds":1}}`

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		resp := rawDo(t, http.MethodPost, e.URL+"/v1/jobs", "", ct, submit)
		requireProblem(t, resp, http.StatusUnsupportedMediaType, "unsupported-media-type")
	}
	all := `TaskQueue = '` + e.TaskQueue + `'`
	e.requireSettledCount(all, 0, "no refused submission started a job")

	for _, host := range []string{"attacker.example:" + port, "attacker.example", "localhost.attacker.example:" + port, "127.0.0.1.nip.io:" + port} {
		resp := rawDo(t, http.MethodGet, e.URL+"/v1/jobs", host, "", "")
		requireProblem(t, resp, http.StatusForbidden, "host-not-allowed")
		resp = rawDo(t, http.MethodPost, e.URL+"/v1/jobs", host, "application/json", submit)
		requireProblem(t, resp, http.StatusForbidden, "host-not-allowed")
	}
	for _, host := range []string{"localhost:" + port, "LOCALHOST.:" + port, "app.localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "10.1.2.3:" + port, "jobs.example.com"} {
		resp := rawDo(t, http.MethodGet, e.URL+"/v1/jobs", host, "", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "Host %s: %s", host, resp.Body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp := rawDo(t, http.MethodGet, e.URL+path, "jobgate-api.internal:"+port, "", "")
		require.NotEqual(t, http.StatusForbidden, resp.StatusCode, "probes hold no job and answer any Host: %s", resp.Body)
	}
	resp := rawDo(t, http.MethodPost, e.URL+"/v1/jobs", "localhost:"+port, "application/json; charset=utf-8", submit)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)

	keyed := mustStartEnv(t, envOptions{noWorker: true, apiKeys: map[string]string{"alpha": "alpha-key-0123456789"}})
	req, err := http.NewRequest(http.MethodGet, keyed.URL+"/v1/jobs", nil)
	require.NoError(t, err)
	req.Host = "jobs.anything.example"
	req.Header.Set("Authorization", "Bearer alpha-key-0123456789")
	got, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got.Body.Close()
	require.Equal(t, http.StatusOK, got.StatusCode, "with API keys, any Host is served")
}

// Every answer, success or problem, carries nosniff and a restrictive
// Content-Security-Policy; a result that is not JSON and has no file name
// is served as an attachment, not inline as a page of the API's origin.
func TestAnswersAreHardenedForBrowsers(t *testing.T) {
	t.Parallel()
	page := job.Define(job.KindSpec[struct{}]{
		Name:        "test.page",
		Description: "Produces an HTML file without a name (tests only).",
		InputSchema: `{"type":"object","additionalProperties":false}`,
		Plan:        func(struct{}) job.Plan { return job.Plan{Expected: time.Second} },
		Run: func(context.Context, struct{}, job.Reporter) (any, error) {
			return &job.File{ContentType: "text/html", Write: func(_ context.Context, w io.Writer) error {
				_, err := io.WriteString(w, "<script>alert(document.cookie)</script>")
				return err
			}}, nil
		},
	})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{page}})
	id, accepted := e.submit(`{"kind":"test.page","input":{}}`)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, result.StatusCode, "body: %s", result.Body)
	require.Regexp(t, `^attachment; filename=`+id+`\.html?$`, result.Header.Get("Content-Disposition"))
	require.True(t, bytes.Contains(result.Body, []byte("<script>")))

	answers := map[string]response{
		"202":         accepted,
		"status":      e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", ""),
		"file result": result,
		"404":         e.do(http.MethodGet, "/v1/jobs/00000000-0000-4000-8000-000000000000", ""),
		"no endpoint": e.do(http.MethodGet, "/nowhere", ""),
		"healthz":     e.do(http.MethodGet, "/healthz", ""),
		"openapi":     e.do(http.MethodGet, "/openapi.json", ""),
		"415":         rawDo(t, http.MethodPost, e.URL+"/v1/jobs", "", "text/plain", "{}"),
	}
	for name, resp := range answers {
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), name)
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'none'", name)
		require.Contains(t, csp, "frame-ancestors 'none'", name)
		require.Contains(t, csp, "sandbox", name)
	}

	// A JSON result stays inline.
	jsonID, _ := e.submit(`{"kind":"sleep","input":{"seconds":0}}`)
	e.waitState(jsonID, job.StateSucceeded, workerRoundTrip)
	inline := e.do(http.MethodGet, "/v1/jobs/"+jsonID+"/result", "")
	require.Equal(t, http.StatusOK, inline.StatusCode)
	require.Empty(t, inline.Header.Get("Content-Disposition"))
}

// Request logs name the tenant a request acted for: each tenant's own, a
// 404 probe of another tenant's job under the prober's name, and no tenant
// for a request whose key was refused.
func TestRequestLogsNameTheTenant(t *testing.T) {
	t.Parallel()
	var logs lockedWriter
	logs.buf = &bytes.Buffer{}
	keyA, keyB := "alpha-key-0123456789", "bravo-key-0123456789"
	e := mustStartEnv(t, envOptions{noWorker: true, logs: &logs, apiKeys: map[string]string{"alpha": keyA, "bravo": keyB}})
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":60}}`, bearer(keyA)...)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/v1/jobs/"+id, "", bearer(keyB)...).StatusCode)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/v1/jobs/"+id, "", bearer("wrong-key-0123456789")...).StatusCode)

	var lines []map[string]any
	eventually(t, 5*time.Second, "three request lines", func() bool {
		lines = nil
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" {
				lines = append(lines, m)
			}
		}
		return len(lines) >= 2
	})
	byStatus := map[string]any{}
	for _, l := range lines {
		byStatus[strconv.Itoa(int(l["status"].(float64)))] = l["tenant"]
	}
	require.Equal(t, "bravo", byStatus["404"], "the 404 probe is bravo's: %v", lines)
	require.Equal(t, "", byStatus["401"], "a refused key acts for no tenant: %v", lines)
}
