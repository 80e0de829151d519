package devserver

import (
	"net"
	"strconv"
	"testing"
)

// A port freePort picked for a service is not handed out again while the
// server starts: 30,000 listeners on port 0 (each on a port the kernel
// picks among ~14,000, so a port merely probed free would come back in
// nine runs of ten) never get it, and a listener on it still binds.
func TestFreePortIsReservedUntilBound(t *testing.T) {
	t.Parallel()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if got == p {
			t.Fatalf("listener %d on port 0 got the reserved port %d", i, p)
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("the service's own listener cannot bind its reserved port: %v", err)
	}
	l.Close()
}
