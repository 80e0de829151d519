package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The command blocks of the docs run here as printed, in a fresh directory,
// with real processes: the only changes are free ports in place of the
// documented ones (other tests and engineers use those), a temporary
// directory in place of /tmp/jobgate-blobs, and the binaries this test
// built in place of the `go build` lines (the build is the same).

// docBlock is the first ```sh block under heading in the markdown file
// (relative to the repository root) that contains marker.
func docBlock(tb testing.TB, file, heading, marker string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
	require.NoError(tb, err)
	text := string(b)
	at := strings.Index(text, "\n"+heading+"\n")
	require.GreaterOrEqual(tb, at, 0, "%s has no heading %q", file, heading)
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```").FindAllStringSubmatch(text[at:], -1) {
		if strings.Contains(m[1], marker) {
			return m[1] + "\n"
		}
	}
	tb.Fatalf("%s, %q: no sh block with %q", file, heading, marker)
	return ""
}

// docScript is a doc block made runnable here.
type docScript struct {
	tb     testing.TB
	script string
	// ports maps each documented port to the free one used instead.
	ports map[string]int
	dir   string
}

// newDocScript replaces the documented ports in block by free ones, and
// each `go build` line of builds by a copy of the binary built for it.
func newDocScript(tb testing.TB, block string, builds map[string]string) *docScript {
	tb.Helper()
	return newDocScriptOn(tb, block, builds, map[string]int{})
}

// newDocScriptOn is newDocScript with some documented ports mapped to
// given ones (a process the test started).
func newDocScriptOn(tb testing.TB, block string, builds map[string]string, ports map[string]int) *docScript {
	tb.Helper()
	s := &docScript{tb: tb, script: block, ports: ports, dir: tb.TempDir()}
	for line, bin := range builds {
		require.Contains(tb, block, line+"\n", "the block builds with %q", line)
		out := strings.Fields(line)[3] // go build -o <out> <pkg>
		s.script = strings.Replace(s.script, line+"\n", fmt.Sprintf("cp %q %s\n", bin, out), 1)
	}
	s.script = regexp.MustCompile(`\b(7233|8080|8081|8090)\b`).ReplaceAllStringFunc(s.script, func(p string) string {
		if _, ok := s.ports[p]; !ok {
			s.ports[p] = freeLoopbackPort(tb)
		}
		return strconv.Itoa(s.ports[p])
	})
	s.script = strings.ReplaceAll(s.script, "/tmp/jobgate-blobs", filepath.Join(s.dir, "shared-blobs"))
	return s
}

func (s *docScript) port(documented string) int {
	p, ok := s.ports[documented]
	require.True(s.tb, ok, "the block uses port %s", documented)
	return p
}

// run runs the script with bash in its own directory and process group,
// with env added, and returns its output once it exits; the processes it
// left running are killed when the test ends.
func (s *docScript) run(env ...string) string {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s.tb.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", s.script)
	cmd.Dir = s.dir
	// An embedded server the block starts without naming its port gets a
	// free one; no Web UI.
	temporal := strconv.Itoa(freeLoopbackPort(s.tb))
	if p, ok := s.ports["7233"]; ok {
		temporal = strconv.Itoa(p)
	}
	cmd.Env = append(os.Environ(), "JOBGATE_EMBEDDED_TEMPORAL_PORT="+temporal, "JOBGATE_EMBEDDED_UI_PORT=0",
		// Metrics on a free port: the HTTP port plus 1000 may be taken.
		"JOBGATE_METRICS_ADDR=127.0.0.1:0")
	// A jobgate the block starts on the default port, :8080, gets the
	// port that stands in for it.
	if p, ok := s.ports["8080"]; ok {
		cmd.Env = append(cmd.Env, "JOBGATE_HTTP_ADDR=:"+strconv.Itoa(p))
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// A file, not a pipe: the processes the block leaves running keep
	// writing to it after bash exits, and Wait must not wait for them.
	out, err := os.Create(filepath.Join(s.tb.TempDir(), "output"))
	require.NoError(s.tb, err)
	s.tb.Cleanup(func() { _ = out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	output := func() string {
		b, _ := os.ReadFile(out.Name())
		return string(b)
	}
	require.NoError(s.tb, cmd.Start())
	pgid := cmd.Process.Pid
	s.tb.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if s.tb.Failed() {
			s.tb.Logf("script:\n%s\noutput:\n%s", s.script, output())
		}
	})
	require.NoError(s.tb, cmd.Wait(), "the block failed:\n%s", s.script)
	return output()
}

// getJSON GETs url and decodes its JSON body.
func getJSON(tb testing.TB, url string) (int, map[string]any) {
	tb.Helper()
	resp, err := http.Get(url)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// docs/production.md: an all-in-one standing in for Temporal, then a
// worker and an API of their own, which run a job.
func TestDocsProductionPair(t *testing.T) {
	t.Parallel()
	block := docBlock(t, "docs/production.md", "### Trying the pair on one machine", "JOBGATE_ROLE=api")
	s := newDocScript(t, block, map[string]string{"go build -o jobgate ./cmd/jobgate": mustBuildBinary(t)})
	out := s.run()
	require.Regexp(t, `"kind":"sleep","state":"succeeded"`, out, "the block's last command answers the succeeded job")

	// The API and the worker are separate processes: the API's answers
	// come from port 8080's stand-in, the worker's probes from 8081's.
	code, _ := getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", s.port("8081")))
	require.Equal(t, http.StatusOK, code, "the worker's probes")
	code, kinds := getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/kinds", s.port("8080")))
	require.Equal(t, http.StatusOK, code)
	require.NotEmpty(t, kinds["kinds"])
	code, _ = getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/kinds", s.port("8081")))
	require.Equal(t, http.StatusNotFound, code, "the worker serves no API")
}

// docs/kinds.md: the custom binary with the primes kind, a primes job
// through it.
func TestDocsCustomKind(t *testing.T) {
	t.Parallel()
	block := docBlock(t, "docs/kinds.md", "### The primes example", "jobgate-primes")
	s := newDocScript(t, block, map[string]string{"go build -o jobgate-primes ./examples/primes/cmd/jobgate-primes": mustBuild(t, "github.com/jobgate/jobgate/examples/primes/cmd/jobgate-primes")})
	out := s.run()
	require.Contains(t, out, `"name":"primes"`, "GET /v1/kinds lists primes")
	m := regexp.MustCompile(`\{"id":"([0-9a-f-]{36})","kind":"primes","state":"queued"`).FindStringSubmatch(out)
	require.NotNil(t, m, "the POST accepted a primes job")
	base := fmt.Sprintf("http://127.0.0.1:%d", s.port("8080"))
	eventually(t, 2*time.Minute, "the primes job succeeds", func() bool {
		_, body := getJSON(t, base+"/v1/jobs/"+m[1]+"?redirect=false")
		require.NotContains(t, []any{"failed", "canceled"}, body["state"])
		return body["state"] == "succeeded"
	})
	_, res := getJSON(t, base+"/v1/jobs/"+m[1]+"/result")
	require.EqualValues(t, 3001134, res["count"], "primes below 50 000 000")
}

// README, "Stopping it": the built binary, signalled directly, shuts down
// gracefully.
func TestDocsStopBuiltBinary(t *testing.T) {
	t.Parallel()
	block := docBlock(t, "README.md", "## The two commands", "kill -TERM")
	require.Contains(t, block, "# …\n")
	// Where the block leaves room for the reader's own commands, wait
	// until jobgate is up; then see how it ends.
	block = strings.Replace(block, "# …\n", "until curl -sf localhost:8080/readyz >/dev/null; do sleep 1; done\n", 1)
	block += "wait $JOBGATE_PID\necho \"jobgate exited with status $?\"\n"
	s := newDocScript(t, block, map[string]string{"go build -o jobgate ./cmd/jobgate": mustBuildBinary(t)})
	out := s.run()
	require.Contains(t, out, "jobgate exited with status 0")
	require.Contains(t, out, "jobgate stopped")
}

// docs/security.md: API keys from a generated key, a request with it and
// one without.
func TestDocsAPIKeys(t *testing.T) {
	t.Parallel()
	block := docBlock(t, "docs/security.md", "## Tenants and API keys", "JOBGATE_API_KEYS")
	s := newDocScript(t, block, map[string]string{"go build -o jobgate ./cmd/jobgate": mustBuildBinary(t)})
	out := s.run()
	require.Contains(t, out, `{"jobs":[`, "the request with the key lists the tenant's jobs")
	require.Contains(t, out, "HTTP/1.1 401 Unauthorized")
	require.Contains(t, strings.ToLower(out), "www-authenticate: bearer")
}

// A second jobgate on a data directory in use fails at once and names the
// process that holds it.
func TestSecondJobgateOnDataDirFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startProcess(t, dir, processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	second := exec.CommandContext(ctx, mustBuildBinary(t))
	second.Env = append(os.Environ(),
		"JOBGATE_DATA_DIR="+dir,
		"JOBGATE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(freeLoopbackPort(t)),
		"JOBGATE_EMBEDDED_TEMPORAL_PORT="+strconv.Itoa(freeLoopbackPort(t)),
		"JOBGATE_EMBEDDED_UI_PORT=0",
		"JOBGATE_METRICS_ADDR=127.0.0.1:0",
	)
	start := time.Now()
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the second jobgate exits with an error:\n%s", out)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), fmt.Sprintf("is in use by process %d", first.cmd.Process.Pid))
	require.Less(t, time.Since(start), 10*time.Second, "at once, not after SQLite's busy timeout")
}

// docBlocks are the ```sh blocks of the markdown file's section under
// heading, in order.
func docBlocks(tb testing.TB, file, heading string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
	require.NoError(tb, err)
	text := string(b)
	at := strings.Index(text, "\n"+heading+"\n")
	require.GreaterOrEqual(tb, at, 0, "%s has no heading %q", file, heading)
	text = text[at+len(heading)+2:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)\n```sh\n(.*?)\n```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1]+"\n")
	}
	return out
}

// README, "A job from 202 to its result, with curl": every block, in
// order, against a running all-in-one, with the walkthrough's job id
// replaced by the id the first block's job got (as its reader does).
func TestDocsREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	const exampleID = "9109232c-9643-4305-bbb2-da716eab38c8"
	port := freeLoopbackPort(t)
	startProcess(t, t.TempDir(), processPorts{http: port, temporal: freeLoopbackPort(t)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	blocks := docBlocks(t, "README.md", "## A job from 202 to its result, with curl")
	require.GreaterOrEqual(t, len(blocks), 6)

	run := func(block string) string {
		t.Helper()
		return newDocScriptOn(t, block, nil, map[string]int{"8080": port}).run()
	}
	out := run(blocks[0])
	require.Contains(t, out, "HTTP/1.1 202 Accepted")
	require.Contains(t, out, fmt.Sprintf("Operation-Location: http://localhost:%d/v1/operations/", port))
	m := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(out)
	require.NotNil(t, m, "the submission answered a job:\n%s", out)
	id := m[1]

	for _, block := range blocks[1:] {
		block = strings.ReplaceAll(block, exampleID, id)
		if strings.Contains(block, "curl -L") {
			// The reader follows the result once the job succeeded.
			eventually(t, time.Minute, "the walkthrough's job succeeds", func() bool {
				_, body := getJSON(t, base+"/v1/jobs/"+id+"?redirect=false")
				return body["state"] == "succeeded"
			})
			require.Contains(t, run(block), `{"slept":5}`)
			continue
		}
		out := run(block)
		switch {
		case strings.Contains(block, "-X DELETE"):
			require.Contains(t, out, "HTTP/1.1 202 Accepted", "the first DELETE")
			require.Contains(t, out, `"state":"canceling"`)
		case strings.Contains(block, "Idempotency-Key"):
			require.Contains(t, out, "HTTP/1.1 202 Accepted")
		case strings.Contains(block, "/v1/kinds"):
			require.Contains(t, out, `"name":"sleep"`)
		default:
			require.Regexp(t, `HTTP/1.1 (200|202)`, out)
		}
	}

	// docs/api.md, "ETag, long-poll and events", on the same all-in-one.
	block := docBlock(t, "docs/api.md", "### ETag, long-poll and events", "/events")
	out = run(block)
	require.Contains(t, out, "Preference-Applied: wait=30", "the long-poll")
	require.Contains(t, out, "event: status", "the event stream")
	require.Regexp(t, `event: status\n(?:[a-z]+: [^\n]*\n)*data: \{[^\n]*"state":"succeeded"`, out, "the stream ends with the job's terminal status")
	require.Contains(t, out, "HTTP/1.1 303 See Other", "Prefer: wait on a submission")
}

// docs/kinds.md, "From your own module": a module of its own beside a
// clone of jobgate, pointed at it with a replace directive, builds its
// binary with the section's commands and main.go as printed.
func TestDocsOwnModule(t *testing.T) {
	t.Parallel()
	const file, heading = "docs/kinds.md", "### From your own module"
	setup := docBlock(t, file, heading, "go mod init")
	build := docBlock(t, file, heading, "go build -o myjobs")
	b, err := os.ReadFile(filepath.Join("..", file))
	require.NoError(t, err)
	text := string(b)
	text = text[strings.Index(text, "\n"+heading+"\n"):]
	m := regexp.MustCompile("(?s)\n```go\n(.*?\n)```").FindStringSubmatch(text)
	require.NotNil(t, m, "%s, %q: no go block (main.go)", file, heading)
	require.Contains(t, m[1], "app.Main(")

	// The directory that holds the clone (as jobgate/): this repository.
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(root, filepath.Join(dir, "jobgate")))
	script := setup + "cat > main.go <<'MAIN_GO'\n" + m[1] + "MAIN_GO\n" + build +
		"go version -m myjobs\n"
	// A cold link of a binary with the Temporal server takes minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the section's commands failed:\n%s\noutput:\n%s", script, out)
	require.Regexp(t, `(?m)^\s+path\s+example.com/myjobs$`, string(out), "the binary is the reader's module's")
	require.Regexp(t, `(?m)^\s+=>\s+\.\./jobgate\b`, string(out), "built with jobgate from the clone")
	info, err := os.Stat(filepath.Join(dir, "myjobs", "myjobs"))
	require.NoError(t, err)
	require.NotZero(t, info.Size())
}

// docs/kinds.md, "A Go worker that imports only the Temporal SDK": jobgate
// with the example's kinds file and the Go worker, a process of its own,
// take a report.build job through its approval to its result.
func TestDocsExternalGoWorker(t *testing.T) {
	t.Parallel()
	block := docBlock(t, "docs/kinds.md", "### A Go worker that imports only the Temporal SDK", "goworker")
	s := newDocScript(t, block, map[string]string{
		"go build -o jobgate ./cmd/jobgate":                 mustBuildBinary(t),
		"go build -o goworker ./examples/external/goworker": mustBuild(t, goWorkerPackage),
	})
	// The block runs in the clone's root, where its kinds file is.
	examples, err := filepath.Abs("../examples")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(examples, filepath.Join(s.dir, "examples")))
	out := s.run()
	m := regexp.MustCompile(`\{"pages":3,"approvedBy":"ada","url":"https://reports.example/([0-9a-f-]{36}).pdf"\}`).FindStringSubmatch(out)
	require.NotNil(t, m, "the block's last command answers the approved report")
	code, status := getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/jobs/%s?redirect=false", s.port("8080"), m[1]))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "succeeded", status["state"])
}

// README, "The two commands": what jobgate prints on standard output when
// it is up, line for line, as the binary prints it with the defaults
// (ports and the data directory's absolute path put back as documented).
func TestDocsStartupLines(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)When it is up, jobgate prints[^`]*```\n(.*?)\n```").FindSubmatch(b)
	require.NotNil(t, m, "README.md shows what jobgate prints when it is up")
	want := strings.Split(string(m[1]), "\n")

	dir := t.TempDir()
	documented := map[int]string{}
	port := func(format, doc string) string {
		p := freeLoopbackPort(t)
		documented[p] = doc
		return fmt.Sprintf(format, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mustBuildBinary(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		port("JOBGATE_HTTP_ADDR=127.0.0.1:%d", "8080"),
		port("JOBGATE_EMBEDDED_TEMPORAL_PORT=%d", "7233"),
		port("JOBGATE_EMBEDDED_UI_PORT=%d", "8233"),
		port("JOBGATE_METRICS_ADDR=127.0.0.1:%d", "9080"),
	)
	stdout := &lockedWriter{buf: &bytes.Buffer{}}
	cmd.Stdout = stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	eventually(t, 90*time.Second, "jobgate says where its API is", func() bool {
		return regexp.MustCompile("jobgate: API at [^\n]*\n").MatchString(stdout.String())
	})

	got := stdout.String()
	got = strings.ReplaceAll(got, "file://"+dir, "file:///…")
	for p, doc := range documented {
		got = strings.ReplaceAll(got, ":"+strconv.Itoa(p), ":"+doc)
	}
	require.Equal(t, want, strings.Split(strings.TrimSuffix(got, "\n"), "\n"))
}
