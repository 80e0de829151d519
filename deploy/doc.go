// Package deploy holds the production deployment files' checks: the files
// themselves (the Compose stack at the repository root, the Dockerfile it
// builds, and the nginx and Temporal configuration in this directory) cannot
// run here without a Docker engine, so compose_test.go loads them the way
// Compose does and asserts what the stack relies on.
//
// The package has no code of its own; run its tests with `go test ./deploy/`.
package deploy
