// Package cluster tests jobgate in its production shape: the built binary
// as separate API and worker processes (two of each) against a Temporal
// server on PostgreSQL (devserver on a throwaway cluster from
// devserver/pgtest, with deploy/temporal/dynamicconfig.yaml), through
// outages of Temporal, of its database and of a worker. It skips where
// PostgreSQL is not installed.
package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/devserver/pgtest"
	"github.com/jobgate/jobgate/internal/freeport"
	"github.com/jobgate/jobgate/webhook"
	"github.com/jobgate/jobgate/workflows"
)

// callTimeout is the processes' JOBGATE_TEMPORAL_CALL_TIMEOUT: how long an
// API call to Temporal may take before it is a 503.
const callTimeout = 2 * time.Second

// tenants each get an API key and a webhook secret, so that each part of
// the suite sees only its own jobs.
var tenants = []string{"basic", "idem", "list", "export", "hooks", "restart", "outage", "kill"}

type stack struct {
	t        *testing.T
	pg       *pgtest.Cluster
	topts    devserver.Options
	temporal *devserver.Server
	tc       client.Client
	bin      string
	dataDir  string
	env      []string
	keys     map[string]string // tenant → API key
	secrets  map[string]string // tenant → whsec_ secret
	// deploymentSecret is every API's JOBGATE_DEPLOYMENT_SECRET.
	deploymentSecret string
	apis             []*proc
	workers          []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	url  string
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int { return freeport.Loopback(t) }

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// mustBuild builds cmd/jobgate once per test run.
func mustBuild(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "jobgate-cluster-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "jobgate"), "github.com/jobgate/jobgate/cmd/jobgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "jobgate")
}

// startStack starts PostgreSQL, Temporal on it, two workers and two APIs.
func startStack(t *testing.T) *stack {
	pg := pgtest.Start(t)
	s := &stack{t: t, pg: pg, keys: map[string]string{}, secrets: map[string]string{}, dataDir: t.TempDir()}
	s.topts = devserver.Options{
		Postgres:          pg.URL("temporal"),
		Port:              freePort(t),
		LogLevel:          "none",
		Retention:         48 * time.Hour,
		DynamicConfigFile: filepath.Join("..", "deploy", "temporal", "dynamicconfig.yaml"),
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	}
	srv, err := devserver.Start(s.topts)
	require.NoError(t, err)
	s.temporal = srv
	t.Cleanup(func() { _ = s.temporal.Stop() })
	s.tc, err = client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: quiet{}})
	require.NoError(t, err)
	t.Cleanup(s.tc.Close)

	s.bin = mustBuild(t)

	var keys, secrets []string
	for _, tenant := range tenants {
		key := "key-" + tenant + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		sum := sha256.Sum256([]byte(key))
		keys = append(keys, tenant+":"+hex.EncodeToString(sum[:]))
		s.keys[tenant] = key
		s.secrets[tenant] = webhook.NewSecret()
		secrets = append(secrets, tenant+":"+s.secrets[tenant])
	}
	s.deploymentSecret = webhook.NewSecret()
	s.env = []string{
		"JOBGATE_DEPLOYMENT_SECRET=" + s.deploymentSecret,
		"JOBGATE_TEMPORAL_ADDRESS=" + srv.FrontendAddress(),
		"JOBGATE_TEMPORAL_NAMESPACE=" + srv.Namespace(),
		"JOBGATE_TEMPORAL_CALL_TIMEOUT=" + callTimeout.String(),
		"JOBGATE_DATA_DIR=" + s.dataDir,
		"JOBGATE_API_KEYS=" + strings.Join(keys, ","),
		"JOBGATE_WEBHOOK_SECRETS=" + strings.Join(secrets, ","),
		"JOBGATE_ALLOW_PRIVATE_TARGETS=true",
		"JOBGATE_RATE_LIMIT=0",
		"JOBGATE_LOG_LEVEL=warn",
		"JOBGATE_SHUTDOWN_TIMEOUT=5s",
	}
	for i := range 2 {
		s.workers = append(s.workers, s.start(fmt.Sprintf("worker-%d", i+1), "worker"))
	}
	for i := range 2 {
		s.apis = append(s.apis, s.start(fmt.Sprintf("api-%d", i+1), "api"))
	}
	for _, p := range append(append([]*proc{}, s.workers...), s.apis...) {
		s.waitReady(p, 60*time.Second)
	}
	return s
}

func (s *stack) start(name, role string) *proc {
	s.t.Helper()
	port := freePort(s.t)
	cmd := exec.Command(s.bin)
	cmd.Env = append(append(os.Environ(), s.env...), "JOBGATE_ROLE="+role, "JOBGATE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port), "JOBGATE_METRICS_ADDR=127.0.0.1:0")
	p := &proc{name: name, cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(s.t, cmd.Start())
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if s.t.Failed() {
			s.t.Logf("output of %s:\n%s", name, p.out)
		}
	})
	return p
}

func (s *stack) waitReady(p *proc, limit time.Duration) {
	s.t.Helper()
	eventually(s.t, limit, p.name+" ready", func() bool {
		select {
		case <-p.done:
			s.t.Fatalf("%s exited:\n%s", p.name, p.out)
		default:
		}
		return s.probe(p) == http.StatusOK
	})
}

// probe answers p's /readyz status (0 when it does not answer).
func (s *stack) probe(p *proc) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*callTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// do sends a request to API process api as tenant, without following
// redirects.
func (s *stack) do(api int, tenant, method, path, body string, header ...string) response {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.apis[api].url+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.keys[tenant])
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *stack) submit(api int, tenant, body string, header ...string) string {
	s.t.Helper()
	r := s.do(api, tenant, http.MethodPost, "/v1/jobs", body, header...)
	require.Equal(s.t, http.StatusAccepted, r.status, "body: %s", r.body)
	id, _ := r.json(s.t)["id"].(string)
	require.NotEmpty(s.t, id)
	return id
}

// waitState polls a job's status (on either API) until it is state.
func (s *stack) waitState(tenant, id, state string, limit time.Duration) map[string]any {
	s.t.Helper()
	var last response
	n := 0
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		last = s.do(n%2, tenant, http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
		n++
		if last.status == http.StatusOK {
			if m := last.json(s.t); m["state"] == state {
				return m
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("job %s did not reach %s in %s; last answer %d %s", id, state, limit, last.status, last.body)
	return nil
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restartTemporal stops the Temporal server, keeps it down for down, and
// starts it again on the same port and databases.
func (s *stack) restartTemporal(down time.Duration) time.Duration {
	s.t.Helper()
	begin := time.Now()
	require.NoError(s.t, s.temporal.Stop())
	time.Sleep(down) // the outage itself, not a wait for a condition
	srv, err := devserver.Start(s.topts)
	require.NoError(s.t, err)
	s.temporal = srv
	return time.Since(begin)
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
