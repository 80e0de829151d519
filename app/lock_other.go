//go:build !unix

package app

// lockDataDir does nothing where flock is not available: two jobgates on
// one data directory then meet SQLite's own lock.
func lockDataDir(string) (func(), error) { return func() {}, nil }
