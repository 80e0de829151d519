//go:build unix

package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A second taker of a data directory fails at once and names the process
// that holds it; once the holder lets go, the directory can be taken again.
func TestLockDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	release, err := lockDataDir(dir)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, lockFile))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(os.Getpid()), strings.TrimSpace(string(b)))

	start := time.Now()
	_, err = lockDataDir(dir)
	require.ErrorContains(t, err, "is in use by process "+strconv.Itoa(os.Getpid()))
	require.ErrorContains(t, err, "JOBGATE_DATA_DIR")
	require.Less(t, time.Since(start), time.Second, "a second jobgate fails at once, not after SQLite's busy timeout")

	release()
	release, err = lockDataDir(dir)
	require.NoError(t, err)
	release()
}

// The lock goes with its process: a holder killed with SIGKILL leaves a
// lock file with its pid in it, and the directory is free again.
func TestLockDataDirFreedByKill(t *testing.T) {
	t.Parallel()
	if os.Getenv("JOBGATE_LOCK_HOLDER") != "" {
		// The child: hold the lock until killed.
		_, err := lockDataDir(os.Getenv("JOBGATE_LOCK_HOLDER"))
		if err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDataDirFreedByKill$")
	cmd.Env = append(os.Environ(), "JOBGATE_LOCK_HOLDER="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make([]byte, len("locked\n"))
	_, err = out.Read(line) // blocks until the child holds the lock (or dies: EOF)
	require.NoError(t, err)
	require.Equal(t, "locked\n", string(line))

	_, err = lockDataDir(dir)
	require.ErrorContains(t, err, "is in use by process "+strconv.Itoa(cmd.Process.Pid))

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	release, err := lockDataDir(dir)
	require.NoError(t, err, "a killed holder's lock is gone with it")
	release()
}
