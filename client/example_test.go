package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/jobgate/jobgate/client"
)

// A job from submission to its result: submit with an Idempotency-Key (safe
// to retry), wait for it to end, then read its result.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.New("http://localhost:8080", client.WithAPIKey(os.Getenv("JOBGATE_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}

	j, err := c.Submit(ctx, client.SubmitRequest{
		Kind:           "sleep",
		Input:          map[string]int{"seconds": 5},
		IdempotencyKey: "example-order-42",
		Wait:           10 * time.Second, // short jobs end within the request
	})
	if err != nil {
		log.Fatal(err)
	}
	if !j.State.Terminal() {
		if j, err = c.Wait(ctx, j.ID); err != nil {
			log.Fatal(err)
		}
	}
	if j.State != client.StateSucceeded {
		log.Fatalf("job %s ended %s: %v", j.ID, j.State, j.Error)
	}
	var out struct{ Slept int }
	if err := c.ResultJSON(ctx, j.ID, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println("slept", out.Slept)
}

// Errors are *client.Problem values; errors.Is tells the kinds apart.
func ExampleProblem() {
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Result(context.Background(), "7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11")
	var p *client.Problem
	switch {
	case errors.Is(err, client.ErrConflict) && errors.As(err, &p):
		fmt.Println("no result: the job is", p.State)
	case errors.Is(err, client.ErrGone):
		fmt.Println("the result expired; submit the job again")
	case err != nil:
		log.Fatal(err)
	default:
		defer res.Body.Close()
		_, _ = io.Copy(os.Stdout, res.Body)
	}
}
