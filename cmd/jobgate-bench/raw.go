package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
)

// The raw baseline: a workflow with one no-op activity, started and run
// with the plain SDK on the same Temporal server, on task queues of its own.
const (
	rawWorkflowName = "BenchRaw"
	rawActivityName = "BenchNoop"
	// rawQueue is polled by the bench's in-process worker.
	rawQueue = "bench-raw"
	// idleQueue is polled by nobody: starts there measure the start alone.
	idleQueue = "bench-idle"
	// acceptQueue is the task queue of the api-role jobgate that measures
	// the accept path: polled by nobody either.
	acceptQueue = "bench-accept"
)

func rawWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, rawActivityName).Get(ctx, nil)
}

func rawNoop(context.Context) error { return nil }

// quietLogger drops the SDK's log lines.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// dial connects an SDK client to a Temporal frontend on loopback. Like
// jobgate's own client to a loopback address (JOBGATE_TEMPORAL_COMPRESSION
// auto), it does not compress: the SDK's default gzip would cost the raw
// side CPU, in the bench and in the server, that jobgate's side does not
// pay.
func dial(ctx context.Context, address string, opts ...grpc.DialOption) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Logger: quietLogger{},
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}, DialOptions: opts}})
	if err != nil {
		return nil, fmt.Errorf("dial Temporal at %s: %w", address, err)
	}
	return c, nil
}

// startRawWorker runs the raw workflow and activity on rawQueue.
func startRawWorker(c client.Client) (worker.Worker, error) {
	w := worker.New(c, rawQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rawWorkflow, workflow.RegisterOptions{Name: rawWorkflowName})
	w.RegisterActivityWithOptions(rawNoop, activity.RegisterOptions{Name: rawActivityName})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start the raw worker: %w", err)
	}
	return w, nil
}

// rawStart starts one raw workflow on queue and returns its ID. Eager start
// hands the first workflow task to the in-process worker, as jobgate's
// all-in-one does for its own.
func rawStart(ctx context.Context, c client.Client, queue string) (string, error) {
	id := uuid.NewString()
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:               id,
		TaskQueue:        queue,
		EnableEagerStart: queue == rawQueue,
	}, rawWorkflowName)
	return id, err
}

// count is the visibility count of query.
func count(ctx context.Context, c client.Client, query string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	if err != nil {
		return 0, fmt.Errorf("count workflows (%s): %w", query, err)
	}
	return resp.GetCount(), nil
}

// waitCount polls the visibility count of query until it reaches want, for
// at most timeout.
func waitCount(ctx context.Context, c client.Client, query string, want int64, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := count(ctx, c, query)
		if err == nil && n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return n, err
			}
			return n, fmt.Errorf("%d of %d workflows (%s) after %s", n, want, query, timeout)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// execution is what visibility says about one workflow execution.
type execution struct {
	ID     string
	Status string
	Start  time.Time
	Close  time.Time
}

// list returns every execution matching query.
func list(ctx context.Context, c client.Client, query string) ([]execution, error) {
	var out []execution
	var token []byte
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := c.ListWorkflow(cctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000, NextPageToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list workflows (%s): %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			x := execution{ID: e.GetExecution().GetWorkflowId(), Status: e.GetStatus().String()}
			if t := e.GetStartTime(); t != nil {
				x.Start = t.AsTime()
			}
			if t := e.GetCloseTime(); t != nil {
				x.Close = t.AsTime()
			}
			out = append(out, x)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// span is from the earliest start to the latest close of executions.
func span(execs []execution) time.Duration {
	var first, last time.Time
	for _, e := range execs {
		if first.IsZero() || e.Start.Before(first) {
			first = e.Start
		}
		if e.Close.After(last) {
			last = e.Close
		}
	}
	if first.IsZero() || last.Before(first) {
		return 0
	}
	return last.Sub(first)
}
