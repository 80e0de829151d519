// Command jobgate-primes is jobgate with one more job kind: primes (see
// package primes). Everything else, configuration included, is jobgate's:
//
//	go run ./examples/primes/cmd/jobgate-primes
//	curl -s localhost:8080/v1/kinds
//	curl -si -X POST localhost:8080/v1/jobs -H 'Content-Type: application/json' \
//	  -d '{"kind":"primes","input":{"below":50000000}}'
package main

import (
	"github.com/jobgate/jobgate/app"
	"github.com/jobgate/jobgate/examples/primes"
)

func main() { app.Main(primes.Kind()) }
