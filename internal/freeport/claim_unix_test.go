//go:build unix

package freeport

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// A port another process claimed is not this process's to claim until
// that process has exited; one this process claimed stays its own.
func TestClaimAcrossProcesses(t *testing.T) {
	claim := func(p int) bool { // as pick calls it, under its lock
		mu.Lock()
		defer mu.Unlock()
		return claim(p)
	}
	if hold := os.Getenv("FREEPORT_TEST_HOLD"); hold != "" {
		p, err := strconv.Atoi(hold)
		if err != nil || !claim(p) {
			t.Fatalf("the holder could not claim port %s", hold)
		}
		os.Stdout.WriteString("held\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
		return
	}
	// Outside the range pick uses, so no other test's; not one an earlier
	// run (-count) left this process holding.
	mu.Lock()
	p := 19000 + os.Getpid()%900
	for held[p] != nil {
		p++
	}
	mu.Unlock()
	child := exec.Command(os.Args[0], "-test.run=^TestClaimAcrossProcesses$")
	child.Env = append(os.Environ(), "FREEPORT_TEST_HOLD="+strconv.Itoa(p))
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		stdin.Close()
		_ = child.Wait()
		t.Fatalf("the holder said %q, %v", line, err)
	}
	if claim(p) {
		t.Errorf("port %d claimed while another process holds it", p)
	}
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatalf("the holder: %v", err)
	}
	if !claim(p) {
		t.Fatalf("port %d not claimed once its holder exited", p)
	}
	if !claim(p) {
		t.Fatalf("port %d, claimed, is not this process's any more", p)
	}
}
