package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// With private targets allowed, an http.request and a webhook aimed at any
// listener of the jobgate process are refused before connecting: jobgate's
// API and profiler, the embedded Temporal's gRPC services, its HTTP API
// and its Web UI (which answer anyone, for every tenant). The listeners
// are found by the kernel's socket table, not by asking jobgate. A
// loopback service that is not jobgate's is still reached.
func TestOutboundNeverReachesJobgatesOwnListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("lists the process's listening sockets in /proc")
	}
	t.Parallel()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	uiPort, temporalHTTPPort, pprofPort, metricsPort := freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t), freeLoopbackPort(t)
	p := startProcess(t, t.TempDir(), ports,
		"JOBGATE_EMBEDDED_STORE=memory",
		"JOBGATE_ALLOW_PRIVATE_TARGETS=true",
		"JOBGATE_EMBEDDED_UI_PORT="+strconv.Itoa(uiPort),
		"JOBGATE_EMBEDDED_HTTP_PORT="+strconv.Itoa(temporalHTTPPort),
		"JOBGATE_PPROF_ADDR=127.0.0.1:"+strconv.Itoa(pprofPort),
		"JOBGATE_METRICS_ADDR=127.0.0.1:"+strconv.Itoa(metricsPort),
	)
	e := &env{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", ports.http), HTTP: &http.Client{Timeout: 30 * time.Second}}

	// The frontend's, history's, matching's and the worker service's gRPC
	// ports besides the six set above.
	known := []int{ports.http, ports.temporal, uiPort, temporalHTTPPort, pprofPort, metricsPort}
	var listening []int
	eventually(t, 30*time.Second, "every listener up", func() bool {
		listening = listeningPorts(t, p.cmd.Process.Pid)
		return len(listening) >= len(known)+3 && !slices.ContainsFunc(known, func(k int) bool { return !slices.Contains(listening, k) })
	})
	require.Contains(t, p.output.String(), "JOBGATE_ALLOW_PRIVATE_TARGETS=true", "start-up says what private targets open up")

	// The HTTP API and the UI would hand out every tenant's jobs.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces", temporalHTTPPort))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the embedded HTTP API runs when asked for")

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(target.Close)
	control, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": target.URL}}))

	urls := map[string]string{}
	for _, port := range listening {
		urls[fmt.Sprintf("listener %d", port)] = fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	// Other spellings of the HTTP API's address.
	for _, host := range []string{"localhost", "0.0.0.0", "127.9.9.9", "[::ffff:127.0.0.1]", "[::1]"} {
		urls["HTTP API via "+host] = fmt.Sprintf("http://%s:%d/api/v1/namespaces", host, temporalHTTPPort)
	}
	requests, hooks := map[string]string{}, map[string]string{}
	for name, url := range urls {
		requests[name], _ = e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": url, "maxAttempts": 1, "timeoutSeconds": 5}}))
		hooks[name], _ = e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 0}, "callbackUrl": url}))
	}

	e.waitState(control, "succeeded", workerRoundTrip)
	for name, id := range requests {
		failed := e.waitState(id, "failed", workerRoundTrip).JSON(t)
		problem, _ := failed["error"].(map[string]any)
		require.Contains(t, problem["title"], "destination-refused", "%s: %v", name, failed)
		require.Contains(t, problem["detail"], "jobgate's own services", name)
	}
	for name, id := range hooks {
		body := e.callbackOf(id, "failed", workerRoundTrip)
		cb := body["callback"].(map[string]any)
		require.EqualValues(t, 1, cb["attempts"], name)
		require.Contains(t, cb["lastError"], "jobgate's own services", name)
	}
}

// The embedded Temporal's HTTP API does not listen unless asked for: no
// listener of a default jobgate process answers its namespace listing.
// (The process listens on all interfaces without API keys, as asked, and
// says so with a warning.)
func TestEmbeddedTemporalHTTPAPIOffByDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("lists the process's listening sockets in /proc")
	}
	t.Parallel()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	p := startProcess(t, t.TempDir(), ports, "JOBGATE_EMBEDDED_STORE=memory", "JOBGATE_HTTP_ADDR=0.0.0.0:"+strconv.Itoa(ports.http))
	require.Contains(t, p.output.String(), "on all interfaces")
	require.Contains(t, p.output.String(), "WARNING: JOBGATE_HTTP_ADDR=0.0.0.0:"+strconv.Itoa(ports.http)+" without API keys")
	listening := listeningPorts(t, p.cmd.Process.Pid)
	require.Contains(t, listening, ports.http)
	require.Contains(t, listening, ports.temporal)
	client := &http.Client{Timeout: 5 * time.Second}
	for _, port := range listening {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces", port))
		if err != nil {
			continue // a gRPC port
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "port %d answers Temporal's HTTP API: %s", port, body)
	}
}

// listeningPorts lists the TCP ports the process pid listens on, from the
// kernel's socket tables and the process's file descriptors.
func listeningPorts(tb testing.TB, pid int) []int {
	tb.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(tb, err)
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		require.NoError(tb, err)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is hex address:port; state 0A is LISTEN.
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			_, portHex, _ := strings.Cut(f[1], ":")
			b, err := hex.DecodeString(portHex)
			require.NoError(tb, err)
			if port := int(b[0])<<8 | int(b[1]); !slices.Contains(ports, port) {
				ports = append(ports, port)
			}
		}
	}
	slices.Sort(ports)
	return ports
}

// A refused request's error says why without revealing the address the
// name resolved to, and no status a client reads repeats the URL's query
// (which may carry a token).
func TestRefusalRevealsNoAddressOrQuery(t *testing.T) {
	t.Parallel()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(target.Close)
	e := mustStartEnv(t, envOptions{allowPrivate: false})
	url := "http://localhost:" + target.URL[len("http://127.0.0.1:"):] + "/x?token=s3cret"
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "http.request", "input": map[string]any{"url": url}}))
	failed := e.waitState(id, "failed", workerRoundTrip)
	problem := failed.JSON(t)["error"].(map[string]any)
	require.Contains(t, problem["title"], "destination-refused")
	require.Contains(t, problem["detail"], "not a public address")
	for _, secret := range []string{"s3cret", "127.0.0.1", "::1"} {
		require.NotContains(t, string(failed.Body), secret)
	}
}
