package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobgate/jobgate/internal/freeport"
)

// proc is one jobgate subprocess. Its output goes to a log file in the run
// directory; the kernel kills it if the bench dies.
type proc struct {
	name    string
	bin     string
	base    []string
	env     []string
	logPath string
	// HTTP is the base URL of its API (or its probes, for a worker).
	HTTP string
	// TemporalPort is its embedded Temporal server's port (role all).
	TemporalPort int

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// procSpec describes a jobgate process to start.
type procSpec struct {
	Name    string
	Bin     string
	DataDir string
	LogDir  string
	// Env are extra JOBGATE_* settings (KEY=VALUE), after the defaults the
	// bench sets so that limits do not distort the measurement.
	Env []string
}

// freePort is a free loopback port below the ephemeral range
// (internal/freeport), which no connection takes before the process
// binds it.
func freePort() (int, error) { return freeport.Pick() }

// newProc prepares a process on fresh loopback ports.
func newProc(spec procSpec) (*proc, error) {
	p := &proc{name: spec.Name, bin: spec.Bin, logPath: filepath.Join(spec.LogDir, spec.Name+".log")}
	p.base = append(os.Environ(),
		"JOBGATE_EMBEDDED_UI_PORT=0",
		"JOBGATE_DATA_DIR="+spec.DataDir,
		"JOBGATE_RATE_LIMIT=0",
		"JOBGATE_MAX_ACTIVE_JOBS=0",
		"JOBGATE_MAX_BACKLOG=0",
		// No metrics listener unless spec.Env asks for one on a port of
		// its own: the HTTP port plus 1000 may be taken on a shared
		// machine.
		"JOBGATE_METRICS_ADDR=off",
	)
	p.base = append(p.base, spec.Env...)
	if err := p.pickPorts(); err != nil {
		return nil, err
	}
	return p, nil
}

// pickPorts chooses fresh loopback ports for the API and the embedded
// Temporal server.
func (p *proc) pickPorts() error {
	httpPort, err := freePort()
	if err != nil {
		return err
	}
	temporalPort, err := freePort()
	if err != nil {
		return err
	}
	p.HTTP = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	p.TemporalPort = temporalPort
	p.env = append(append([]string(nil), p.base...),
		"JOBGATE_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(httpPort),
		"JOBGATE_EMBEDDED_TEMPORAL_PORT="+strconv.Itoa(temporalPort),
	)
	return nil
}

// startFirst starts the process for the first time; if another program
// took one of its ports between picking and binding (the machine is
// shared), it picks new ones and tries again.
func (p *proc) startFirst(ctx context.Context, readyPath string, timeout time.Duration) error {
	var err error
	for range 3 {
		if err = p.start(ctx, readyPath, timeout); err == nil || !strings.Contains(p.logTail(5), "address already in use") {
			return err
		}
		logf("%s: a port was taken meanwhile; trying other ports", p.name)
		if err := p.pickPorts(); err != nil {
			return err
		}
	}
	return err
}

// TemporalAddress is host:port of the embedded Temporal frontend.
func (p *proc) TemporalAddress() string { return "127.0.0.1:" + strconv.Itoa(p.TemporalPort) }

// start runs the process (again, after a kill: same ports, same data) and
// waits until readyPath answers 200.
func (p *proc) start(ctx context.Context, readyPath string, timeout time.Duration) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start %s: %w", p.name, p.bin, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p.waitReady(ctx, readyPath, timeout)
}

// waitReady polls readyPath until it answers 200, the process exits or
// timeout passes.
func (p *proc) waitReady(ctx context.Context, readyPath string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); its log: %s\n%s", p.name, p.exitErr(), p.logPath, p.logTail(20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(p.HTTP + readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s%s after %s; its log: %s\n%s", p.name, p.HTTP, readyPath, timeout, p.logPath, p.logTail(20))
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
func (p *proc) stop(timeout time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var exit *exec.ExitError
		if err := p.exitErr(); err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, timeout)
	}
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func (p *proc) peakRSS() (int64, error) {
	if !p.running() {
		return 0, fmt.Errorf("%s is not running", p.name)
	}
	return vmHWM(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
}

// vmHWM reads the VmHWM line of a /proc/<pid>/status file.
func vmHWM(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return parseKB(v)
		}
	}
	return 0, fmt.Errorf("%s has no VmHWM line", path)
}

// parseKB parses a /proc size such as "  123456 kB" into bytes.
func parseKB(v string) (int64, error) {
	fields := strings.Fields(v)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, fmt.Errorf("unexpected /proc size %q", v)
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected /proc size %q: %w", v, err)
	}
	return n * 1024, nil
}

// logTail is the last n lines of the process's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuTime is the CPU time (user and system) the process has used so far.
func (p *proc) cpuTime() time.Duration {
	if !p.running() {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	d, err := parseStatCPU(string(b))
	if err != nil {
		return 0
	}
	return d
}

// clockTick is the kernel's USER_HZ, in which /proc reports CPU time; it is
// 100 on every Linux this runs on.
const clockTick = 10 * time.Millisecond

// parseStatCPU reads utime plus stime from a /proc/<pid>/stat line.
func parseStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) may hold spaces; fields count from after
	// its closing parenthesis, where field 3 (state) begins.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("unexpected /proc stat line %q: %w", stat, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}
