// Package activities runs the real work of each job kind as Temporal
// activities: it hands a kind's Run function a context that is canceled when
// the job is, and turns the progress the work reports into heartbeats, which
// is also how cancellation reaches the work.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// HeartbeatInterval is how often a running activity heartbeats, whether or
// not its work reports progress. The worker sends heartbeats to Temporal at
// most this often, so it bounds both how stale progress can be and how long
// a cancellation takes to reach the work.
const HeartbeatInterval = time.Second

// Register registers every kind of reg as an activity named after the kind.
func Register(w worker.ActivityRegistry, reg *job.Registry) {
	for _, k := range reg.Kinds() {
		w.RegisterActivityWithOptions(runner(k), activity.RegisterOptions{Name: k.Name})
	}
}

// runner adapts a kind's Run function to an activity.
func runner(k job.Kind) func(ctx context.Context, input json.RawMessage) (workflows.Output, error) {
	return func(ctx context.Context, input json.RawMessage) (workflows.Output, error) {
		hb := &heartbeater{}
		// Resume from the last progress a previous attempt reported.
		if activity.HasHeartbeatDetails(ctx) {
			var p job.Progress
			if activity.GetHeartbeatDetails(ctx, &p) == nil {
				hb.last = &p
			}
		}
		stop := hb.run(ctx)
		result, err := k.Run(ctx, input, hb.report)
		stop()
		if err != nil {
			return workflows.Output{}, activityError(ctx, err)
		}
		raw, err := json.Marshal(result)
		if err != nil {
			return workflows.Output{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("kind %s returned a result that is not JSON: %v", k.Name, err), "invalid-result", nil)
		}
		return workflows.Output{Result: raw, Progress: hb.progress()}, nil
	}
}

// activityError classifies the work's error: cancellation stays
// cancellation, permanent errors are not retried, others are.
func activityError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err // the kind chose its own retry behaviour
	}
	var perm *job.PermanentError
	if errors.As(err, &perm) {
		return temporal.NewNonRetryableApplicationError(perm.Error(), perm.Type, nil)
	}
	return temporal.NewApplicationError(err.Error(), "work-failed")
}

// heartbeater keeps the last reported progress and heartbeats it every
// HeartbeatInterval until stopped.
type heartbeater struct {
	mu   sync.Mutex
	last *job.Progress
}

func (h *heartbeater) report(p job.Progress) {
	h.mu.Lock()
	h.last = &p
	h.mu.Unlock()
}

func (h *heartbeater) progress() *job.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *heartbeater) beat(ctx context.Context) {
	if p := h.progress(); p != nil {
		activity.RecordHeartbeat(ctx, *p)
	} else {
		activity.RecordHeartbeat(ctx)
	}
}

func (h *heartbeater) run(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	h.beat(ctx)
	go func() {
		defer close(finished)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				h.beat(ctx)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// Builtin returns jobgate's built-in kinds: sleep and http.request.
func Builtin(out Outbound) []job.Kind {
	return []job.Kind{Sleep(), HTTPRequest(out)}
}
