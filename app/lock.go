//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the name of the data directory's lock, which holds the pid
// of the jobgate that uses the directory.
const lockFile = "jobgate.lock"

// lockDataDir takes the data directory for this process: an exclusive,
// non-blocking flock on dir/jobgate.lock, with this process's pid written
// in it. A second jobgate on the same directory fails at once, naming the
// holder, instead of waiting on SQLite's lock. The kernel drops the lock
// when the process exits, however it exits, so a killed jobgate leaves
// nothing to clean up. release gives the lock up.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = "process " + strconv.Itoa(pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by %s (it holds %s): stop that jobgate, or give this one another JOBGATE_DATA_DIR", dir, holder, lockFile)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write pid to %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}
