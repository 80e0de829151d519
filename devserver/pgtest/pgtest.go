// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb
// from the machine's PostgreSQL binaries (Debian's postgresql package) into
// a temporary directory, a free port on loopback, fsync off. Tests that need
// it skip, saying what to install, where the binaries are absent. It links
// no Temporal code; devserver.Options.Postgres runs a Temporal server on
// the cluster's URL. Launch starts one outside a test (cmd/jobgate-bench).
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Install is what to run to get the binaries this package needs.
const Install = "apt-get install -y postgresql"

// Cluster is a running (or stopped) throwaway PostgreSQL cluster.
type Cluster struct {
	bin  string
	dir  string
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

// BinDir finds PostgreSQL's server binaries: $JOBGATE_PG_BIN, the newest
// /usr/lib/postgresql/*/bin (Debian), or initdb on PATH. It returns "" when
// there are none.
func BinDir() string {
	if d := os.Getenv("JOBGATE_PG_BIN"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// ErrNotInstalled is returned by Launch when PostgreSQL's binaries, or
// the postgres user to run them as root, are missing.
var ErrNotInstalled = errors.New("PostgreSQL is not installed; install it with: " + Install)

// Start initializes and starts a cluster, stopped and deleted when the test
// ends. It skips the test when PostgreSQL is not installed.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := Launch()
	if errors.Is(err, ErrNotInstalled) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Launch initializes a cluster in a new temporary directory and starts it,
// for programs that are no tests (cmd/jobgate-bench); Close stops it and
// deletes the directory. It returns an error wrapping ErrNotInstalled when
// PostgreSQL is not installed.
func Launch() (*Cluster, error) {
	bin := BinDir()
	if bin == "" {
		return nil, fmt.Errorf("%w (no initdb in $JOBGATE_PG_BIN, /usr/lib/postgresql/*/bin or on PATH)", ErrNotInstalled)
	}
	c := &Cluster{bin: bin}
	// initdb and postgres refuse to run as root: run them as the postgres
	// user the package creates.
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w (running as root and there is no postgres user to run PostgreSQL as: %v)", ErrNotInstalled, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Cluster, error) { _ = os.RemoveAll(dir); return nil, err }
	if c.cred != nil {
		if err := os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fail(err)
		}
	}
	c.dir = filepath.Join(dir, "data")
	if out, err := c.command("initdb", "-D", c.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	if err := c.Resume(); err != nil {
		return fail(err)
	}
	return c, nil
}

// Close stops the server and deletes its directory.
func (c *Cluster) Close() {
	c.Stop()
	_ = os.RemoveAll(filepath.Dir(c.dir))
}

// PID is the process id of the running server's postmaster, the parent of
// every backend process (0 when it is stopped).
func (c *Cluster) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = filepath.Dir(c.dir)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// URL is the postgres:// URL of database on the cluster (user postgres, no
// password, no TLS).
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// Address is the cluster's host:port.
func (c *Cluster) Address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)) }

// Resume starts the server on the cluster's directory and port and waits
// until it accepts connections. It does nothing if the server runs.
func (c *Cluster) Resume() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return nil
	}
	cmd := c.command("postgres", "-D", c.dir, "-p", strconv.Itoa(c.port), "-k", filepath.Dir(c.dir),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=400", "-c", "shared_buffers=64MB")
	c.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c.command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.port)).Run() == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited at start:\n%s", c.log)
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("postgres not ready after 30s:\n%s", c.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.cmd, c.done = cmd, done
	return nil
}

// Stop shuts the server down at once (PostgreSQL's fast shutdown: open
// connections are closed, transactions rolled back) and waits until it has
// exited. The data stays, for Resume. It does nothing if it is stopped.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}
