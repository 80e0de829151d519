package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
)

// BatchHTTPInput is the input of the batch.http kind.
type BatchHTTPInput struct {
	// Requests are the calls to make, 1 to 1000, each as http.request's
	// input (maxAttempts defaults to 3 here).
	Requests []HTTPRequestInput `json:"requests"`
	// Concurrency bounds the calls in flight, 1 to 64 (default 8).
	Concurrency int `json:"concurrency,omitempty"`
}

// BatchHTTPResult is the result of the batch.http kind: every request's
// outcome, in the order of the input.
type BatchHTTPResult struct {
	Items []BatchItem `json:"items"`
	// Total counts the requests; Succeeded those that got an answer (any
	// status that is not retried), Failed those that did not.
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// BatchItem is one request's outcome: its answer, or the error that ended
// its attempts.
type BatchItem struct {
	Index        int                 `json:"index"`
	Status       int                 `json:"status,omitempty"`
	Headers      map[string][]string `json:"headers,omitempty"`
	Body         json.RawMessage     `json:"body,omitempty"`
	BodyEncoding string              `json:"bodyEncoding,omitempty"`
	Error        *ItemError          `json:"error,omitempty"`
	// Attempts counts the tries of this request.
	Attempts int `json:"attempts"`
}

// ItemError says why a request of a batch failed.
type ItemError struct {
	// Type is "destination-refused", "response-too-large", "http-503",
	// "network" and the like.
	Type    string `json:"type"`
	Message string `json:"message"`
}

const (
	maxBatchRequests       = 1000
	maxBatchConcurrency    = 64
	defaultBatchConcurrent = 8
	defaultBatchAttempts   = 3
	maxBatchBackoff        = 30 * time.Second
)

// batchRequestSchema is the JSON Schema of one batch.http request: an
// http.request input whose maxAttempts defaults to defaultBatchAttempts.
var batchRequestSchema = strings.Replace(httpRequestSchema,
	`"maxAttempts":{"type":"integer","minimum":1,"maximum":20,"default":5}`,
	`"maxAttempts":{"type":"integer","minimum":1,"maximum":20,"default":`+strconv.Itoa(defaultBatchAttempts)+`}`, 1)

// BatchHTTP is the batch.http kind: many HTTP calls with bounded
// concurrency, each retried with backoff on network errors, 5xx and 429
// (honouring Retry-After) up to its maxAttempts, then recorded as failed.
// Each finished request is checkpointed in blobs (when not nil) before it
// counts as done, so a retried attempt, after a worker died or shut down,
// skips it. A cancel stops dispatching and aborts the calls in flight.
func BatchHTTP(out Outbound, blobs *blob.Store) job.Kind {
	client := out.client()
	return job.Define(job.KindSpec[BatchHTTPInput]{
		KeepsScratch:     true,
		Name:             "batch.http",
		Description:      "Sends many HTTP requests with bounded concurrency, each retried on network errors, 5xx and 429; the result has every request's outcome.",
		ExpectedDuration: "about a second per wave of concurrent requests",
		InputSchema: `{"type":"object","additionalProperties":false,"required":["requests"],"properties":{` +
			`"requests":{"type":"array","minItems":1,"maxItems":1000,"items":` + batchRequestSchema + `},` +
			`"concurrency":{"type":"integer","minimum":1,"maximum":64,"default":8}}}`,
		Validate: validateBatch,
		Plan:     planBatch,
		Run: func(ctx context.Context, in BatchHTTPInput, report job.Reporter) (any, error) {
			b := &batch{client: client, limit: out.maxResponseBytes(), budget: out.maxBatchResultBytes(), blobs: blobs, in: in, report: report}
			return b.run(ctx)
		},
	})
}

func validateBatch(in BatchHTTPInput) []job.FieldError {
	var errs []job.FieldError
	if len(in.Requests) == 0 || len(in.Requests) > maxBatchRequests {
		errs = append(errs, job.FieldError{Field: "/input/requests", Message: fmt.Sprintf("must hold 1 to %d requests, not %d", maxBatchRequests, len(in.Requests))})
	}
	if in.Concurrency < 0 || in.Concurrency > maxBatchConcurrency {
		errs = append(errs, job.FieldError{Field: "/input/concurrency", Message: fmt.Sprintf("must be between 1 and %d", maxBatchConcurrency)})
	}
	for i, r := range in.Requests {
		for _, e := range validateHTTPRequest(r) {
			e.Field = "/input/requests/" + strconv.Itoa(i) + strings.TrimPrefix(e.Field, "/input")
			errs = append(errs, e)
		}
	}
	return errs
}

func (in BatchHTTPInput) concurrency() int {
	return min(max(orDefault(in.Concurrency, defaultBatchConcurrent), 1), maxBatchConcurrency)
}

func planBatch(in BatchHTTPInput) job.Plan {
	waves := (max(len(in.Requests), 1) + in.concurrency() - 1) / in.concurrency()
	var worst time.Duration
	for _, r := range in.Requests {
		attempts := time.Duration(orDefault(r.MaxAttempts, defaultBatchAttempts))
		worst = max(worst, attempts*(time.Duration(orDefault(r.TimeoutSeconds, defaultHTTPTimeout))*time.Second+maxBatchBackoff))
	}
	return job.Plan{
		Expected: time.Duration(waves) * time.Second,
		Timeout:  min(time.Duration(waves)*worst+time.Minute, 24*time.Hour),
		// Attempts after a worker died or shut down; finished requests are
		// not sent again.
		Retry: job.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 10},
	}
}

// batch is one attempt at a batch.
type batch struct {
	client *http.Client
	limit  int64
	// budget bounds the items' checkpointed results together.
	budget int64
	blobs  *blob.Store
	in     BatchHTTPInput
	report job.Reporter

	prefix string // checkpoints' key prefix; "" keeps them in memory
	tenant string // whose blob storage the checkpoints count toward

	mu   sync.Mutex
	done int
	// used is the bytes of the items' results checkpointed or being
	// checkpointed, out of budget.
	used int64
	mem  map[int]*BatchItem
}

func (b *batch) progress() job.Progress {
	return job.Progress{Current: int64(b.done), Total: int64(len(b.in.Requests)),
		Message: fmt.Sprintf("sent %d of %d requests", b.done, len(b.in.Requests))}
}

func (b *batch) run(ctx context.Context) (any, error) {
	info, _ := job.InfoFrom(ctx)
	b.mem = map[int]*BatchItem{}
	b.tenant = info.Tenant
	finished := map[int]bool{}
	if b.blobs != nil && info.ID != "" {
		b.prefix = ScratchPrefix(info.ID) + "batch/"
		objs, err := b.blobs.Objects(ctx, b.prefix)
		if err != nil {
			return nil, fmt.Errorf("read the batch's checkpoints: %w", err)
		}
		for _, o := range objs {
			if i, ok := b.checkpointIndex(o.Key); ok {
				finished[i] = true
				b.used += o.Size
			}
		}
	}
	b.done = len(finished)
	b.report(b.progress())

	stopping := job.Stopping(ctx)
	todo := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, b.in.concurrency())
	for range b.in.concurrency() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				item, ok := b.send(ctx, stopping, i)
				if !ok {
					continue // interrupted: a later attempt sends it
				}
				if err := b.record(ctx, item); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
dispatch:
	for i := range b.in.Requests {
		if finished[i] {
			continue
		}
		select {
		case <-ctx.Done():
			break dispatch
		case <-stopping:
			break dispatch
		case err := <-errs:
			errs <- err
			break dispatch
		case todo <- i:
		}
	}
	close(todo)
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case len(errs) > 0:
		return nil, <-errs
	case b.done < len(b.in.Requests):
		return nil, fmt.Errorf("stopped after %d of %d requests", b.done, len(b.in.Requests))
	}
	return &job.File{ContentType: "application/json", Write: b.writeResult}, nil
}

// send makes request i, retrying it per its policy. ok is false when the
// job was canceled or the worker shuts down before the request finished.
func (b *batch) send(ctx context.Context, stopping <-chan struct{}, i int) (item *BatchItem, ok bool) {
	req := b.in.Requests[i]
	attempts := orDefault(req.MaxAttempts, defaultBatchAttempts)
	item = &BatchItem{Index: i}
	backoff := time.Second
	for {
		item.Attempts++
		resp, err := doHTTPRequest(ctx, b.client, b.limit, req, func(job.Progress) {})
		if err == nil {
			item.Status, item.Headers, item.Body, item.BodyEncoding = resp.Status, resp.Headers, resp.Body, resp.BodyEncoding
			return item, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		var perm *job.PermanentError
		var appErr *temporal.ApplicationError
		delay := backoff
		switch {
		case errors.As(err, &perm):
			item.Error = &ItemError{Type: perm.Type, Message: perm.Error()}
			return item, true
		case errors.As(err, &appErr):
			item.Error = &ItemError{Type: appErr.Type(), Message: appErr.Message()}
			if d := appErr.NextRetryDelay(); d > 0 {
				delay = min(d, maxBatchBackoff)
			}
		default:
			item.Error = &ItemError{Type: "network", Message: err.Error()}
		}
		if item.Attempts >= attempts {
			return item, true
		}
		item.Error = nil
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false
		case <-stopping:
			t.Stop()
			return nil, false
		case <-t.C:
		}
		backoff = min(backoff*2, maxBatchBackoff)
	}
}

// record checkpoints a finished request, then counts it done. A result
// that would take the batch's results past the budget is kept without its
// headers and body.
func (b *batch) record(ctx context.Context, item *BatchItem) error {
	data, err := b.reserve(item)
	if err != nil {
		return err
	}
	if b.prefix != "" {
		// A checkpoint outlives a cancel that comes while it is written.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := b.blobs.Put(wctx, b.checkpointKey(item.Index), data, blob.Attrs{ContentType: "application/json", Tenant: b.tenant}); err != nil {
			b.mu.Lock()
			b.used -= int64(len(data))
			b.mu.Unlock()
			if errors.Is(err, blob.ErrQuotaExceeded) {
				return quotaFailure(err)
			}
			return fmt.Errorf("checkpoint request %d: %w", item.Index, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.prefix == "" {
		b.mem[item.Index] = item
	}
	b.done++
	b.report(b.progress())
	return nil
}

// reserve takes item's encoded size from the budget and returns the
// encoding. An item that does not fit loses its headers and body (it
// keeps its status, attempts and an error that says why): that much
// always fits, at a few hundred bytes, so every request keeps its outcome.
func (b *batch) reserve(item *BatchItem) ([]byte, error) {
	data, err := json.Marshal(item)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+int64(len(data)) > b.budget && item.Error == nil {
		status := item.Status
		*item = BatchItem{Index: item.Index, Status: status, Attempts: item.Attempts, Error: &ItemError{
			Type: "batch-result-too-large",
			Message: fmt.Sprintf("the server answered %d, but its response (%d bytes as a result) would take the batch's results past their %d-byte limit (JOBGATE_MAX_BATCH_RESULT_BYTES); its headers and body are not kept",
				status, len(data), b.budget),
		}}
		if data, err = json.Marshal(item); err != nil {
			return nil, err
		}
	}
	b.used += int64(len(data))
	return data, nil
}

func (b *batch) checkpointKey(i int) string { return b.prefix + strconv.Itoa(i) + ".json" }

func (b *batch) checkpointIndex(key string) (int, bool) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(key, b.prefix), ".json")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(name)
	if err != nil || i < 0 || i >= len(b.in.Requests) {
		return 0, false
	}
	return i, true
}

// writeResult streams the result, one item at a time from the
// checkpoints, so a large batch is never held in memory whole.
func (b *batch) writeResult(ctx context.Context, w io.Writer) error {
	res := BatchHTTPResult{Total: len(b.in.Requests)}
	if _, err := io.WriteString(w, `{"items":[`); err != nil {
		return err
	}
	for i := range b.in.Requests {
		var data []byte
		var item BatchItem
		if b.prefix != "" {
			var err error
			if data, err = b.blobs.Get(ctx, b.checkpointKey(i)); err != nil {
				return fmt.Errorf("read the checkpoint of request %d: %w", i, err)
			}
			if err := json.Unmarshal(data, &item); err != nil {
				return fmt.Errorf("decode the checkpoint of request %d: %w", i, err)
			}
		} else {
			item = *b.mem[i]
			data, _ = json.Marshal(item)
		}
		if item.Error != nil {
			res.Failed++
		} else {
			res.Succeeded++
		}
		if i > 0 {
			data = append([]byte{','}, data...)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, `],"total":%d,"succeeded":%d,"failed":%d}`, res.Total, res.Succeeded, res.Failed)
	return err
}
