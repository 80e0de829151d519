// This file keeps the TypeScript worker out of jobgate's Go module: npm's
// node_modules holds Go sources of its own (the Temporal SDK's core), which
// `go build ./...` and `go vet ./...` must not walk.
module tsworker

go 1.26
