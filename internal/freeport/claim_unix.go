//go:build unix

package freeport

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// claim takes port p for this process against the other processes of the
// machine that use freeport: an exclusive lock on a file of the port's,
// held (its descriptor left open) until the process exits, when the
// kernel releases it. A port another process holds is not claimed; where
// no lock can be taken at all (no writable temporary directory), every
// port is.
func claim(p int) bool {
	if held[p] != nil {
		return true
	}
	dir := filepath.Join(os.TempDir(), "jobgate-freeport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	held[p] = f // kept open: the lock lasts as long as the process
	return true
}

// held are the lock files of the ports this process claimed (pick's lock
// guards it).
var held = map[int]*os.File{}
