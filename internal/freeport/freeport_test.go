package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopbackPortsAreBelowTheEphemeralRangeAndDistinct(t *testing.T) {
	low := ephemeralLow()
	if low <= lowest {
		t.Skip("no ephemeral range to stay below here")
	}
	seen := map[int]bool{}
	for range 50 {
		p := Loopback(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < lowest || p >= low {
			t.Fatalf("port %d outside [%d, %d)", p, lowest, low)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestPickSkipsPortsInUseAndPortsGiven(t *testing.T) {
	// Ten consecutive free ports, all held but one.
	var from int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for try := lowest + 7000; try < lowest+9000 && from == 0; try += 10 {
		var ls []net.Listener
		for p := try; p < try+10; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == 10 {
			from, held = try, ls
			break
		}
		for _, l := range ls {
			l.Close()
		}
	}
	if from == 0 {
		t.Skip("no ten consecutive free ports here")
	}
	mu.Lock()
	for p := from; p < from+10; p++ {
		delete(given, p) // an earlier run's (-count)
	}
	mu.Unlock()
	open := from + 3
	held[3].Close()
	held = append(held[:3], held[4:]...)

	p, err := pick(from, from+10)
	if err != nil || p != open {
		t.Fatalf("pick = %d, %v; want the one free port %d", p, err, open)
	}
	// Given once, it is not given again: the kernel's choice instead.
	p, err = pick(from, from+10)
	if err != nil || (p >= from && p < from+10) {
		t.Fatalf("pick = %d, %v; want a port outside the held range", p, err)
	}
}
