package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateWritesOnceAndSharesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secret")
	var n int
	var mu sync.Mutex
	gen := func() string { mu.Lock(); defer mu.Unlock(); n++; return strings.Repeat("s", 40) }
	got := make([]string, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], errs[i] = LoadOrCreate(path, gen, nil) }()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != strings.Repeat("s", 40) {
			t.Fatalf("caller %d: %q, %v", i, got[i], errs[i])
		}
	}
	if n != 1 {
		t.Fatalf("generated %d secrets, want 1", n)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, %v", fi, err)
	}
}

func TestLoadOrCreateChecksWhatItReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := errors.New("too short")
	_, err := LoadOrCreate(path, func() string { return "unused" }, func(s string) error {
		if s != "short" {
			t.Errorf("check got %q, want the trimmed content", s)
		}
		return bad
	})
	if !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the check's error", err)
	}
}
