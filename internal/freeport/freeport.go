// Package freeport hands tests and the bench loopback TCP ports that stay
// free until the process they start listens on them.
//
// A port the kernel picks for a listener on port 0 comes from the
// ephemeral range, the one every other listener on port 0 and every
// outgoing connection take theirs from: once the test closes its probe
// listener, any of them may take the port before the jobgate the test
// starts (after building it, perhaps for minutes) binds it. So on Linux
// the ports come from below that range, where the kernel never hands one
// out by itself, and each is probed and handed out once: per process, and
// across the processes of one machine through a lock file per port that
// the process holds until it exits (the test binaries of go test ./...
// run side by side). (The embedded server reserves its own ports
// differently, through TIME_WAIT, which lasts a minute: enough for its own
// start, not for a build.)
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range Pick picks from: above the
// well-known ports and the registered ones services usually take.
const lowest = 20000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// TB is the part of testing.TB Loopback uses, so that the bench, a
// command that calls Pick, does not link package testing.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Loopback returns a TCP port free on 127.0.0.1 that no earlier call in
// this process returned, or fails the test.
func Loopback(tb TB) int {
	tb.Helper()
	p, err := Pick()
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Pick returns a TCP port free on 127.0.0.1 that no earlier call in this
// process returned.
func Pick() (int, error) { return pick(lowest, ephemeralLow()) }

// pick probes random ports of [from, below) not given yet, and takes the
// first free one no other process claimed; it falls back to the kernel's
// choice when the range is empty or every probe failed. A port is probed
// before it is claimed, so that no lock is held for one in use.
func pick(from, below int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if below > from {
		for range 200 {
			p := from + rand.IntN(below-from)
			if !given[p] && free(p) && claim(p) {
				given[p] = true
				return p, nil
			}
		}
	}
	// No room below the ephemeral range, or none free: the kernel's choice.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[p] {
			given[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("find a free loopback port: every one tried was taken")
}

func free(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow is the bottom of the kernel's ephemeral port range, or
// lowest (nothing to pick from) where it cannot be read; read once.
var ephemeralLow = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lowest
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lowest
	}
	low, err := strconv.Atoi(f[0])
	if err != nil {
		return lowest
	}
	return low
})
