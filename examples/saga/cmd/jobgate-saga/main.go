// Command jobgate-saga is jobgate with one more job kind: order, an order
// saga (see package saga), acting on an in-memory shop: books and lamps in
// stock, customers alice (100.00 in her account) and bob (5.00). Everything
// else, configuration included, is jobgate's:
//
//	go run ./examples/saga/cmd/jobgate-saga
//	ID=$(curl -s -X POST localhost:8080/v1/jobs -H 'Content-Type: application/json' \
//	  -d '{"kind":"order","input":{"customer":"alice","items":[{"sku":"book","quantity":2}],"amount":3000}}' |
//	  sed 's/.*"id":"\([^"]*\)".*/\1/')
//	curl -s localhost:8080/v1/jobs/$ID        # waitingFor: approval
//	curl -X POST localhost:8080/v1/jobs/$ID/inputs/approval \
//	  -H 'Content-Type: application/json' -d '{"approved":true}'
//	curl -sL localhost:8080/v1/jobs/$ID       # the result, once shipped
//
// The shop lives in the process: restarting it restocks the shop, while
// the jobs, kept by Temporal, go on.
package main

import (
	"time"

	"github.com/jobgate/jobgate/app"
	"github.com/jobgate/jobgate/examples/saga"
)

func main() {
	app.Main(saga.Kind(&saga.Activities{
		Inventory: saga.NewInventory(map[string]int{"book": 100, "lamp": 10}),
		Payments:  saga.NewPayments(map[string]int64{"alice": 100_00, "bob": 5_00}),
		PackTime:  time.Second,
	}))
}
