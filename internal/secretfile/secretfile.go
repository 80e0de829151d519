// Package secretfile keeps a generated secret in a file that processes
// sharing a directory share: the first to start writes it, the others read
// it.
package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LoadOrCreate returns the secret kept in the file at path, or writes
// newSecret() there (mode 0600) when there is no such file. A process that
// finds the file empty waits a moment for the one writing it. check, when
// set, vets a secret read back from the file.
func LoadOrCreate(path string, newSecret func() string, check func(string) error) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("create directory of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		secret := newSecret()
		_, werr := f.WriteString(secret + "\n")
		cerr := f.Close()
		if err := errors.Join(werr, cerr); err != nil {
			_ = os.Remove(path)
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		return secret, nil
	case !errors.Is(err, fs.ErrExist):
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	// Another process may be writing it right now.
	var data []byte
	for range 50 {
		if data, err = os.ReadFile(path); err != nil || len(data) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	secret := strings.TrimSpace(string(data))
	if check != nil {
		if err := check(secret); err != nil {
			return "", err
		}
	}
	return secret, nil
}
