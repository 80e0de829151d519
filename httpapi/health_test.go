package httpapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// However many callers ask at once, one probe runs, and its answer serves
// every caller until it is older than readinessTTL.
func TestReadinessProbesOncePerTTL(t *testing.T) {
	t.Parallel()
	var probes atomic.Int32
	release := make(chan struct{})
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	r := newReadiness(func(ctx context.Context) error {
		probes.Add(1)
		<-release
		return nil
	}, nil, func() time.Time { clock.Lock(); defer clock.Unlock(); return now })

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- r.check(context.Background()) })
	}
	// Let every caller join the probe in flight, then answer it.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, probes.Load(), "50 concurrent callers share one probe")

	for range 100 {
		require.NoError(t, r.check(context.Background()))
	}
	require.EqualValues(t, 1, probes.Load(), "a fresh answer is reused")

	clock.Lock()
	now = now.Add(readinessTTL)
	clock.Unlock()
	require.NoError(t, r.check(context.Background()))
	require.EqualValues(t, 2, probes.Load(), "an answer as old as the TTL is probed again")
}

// A caller that gives up does not cancel the probe the others wait for.
func TestReadinessCallerGivingUpLeavesTheProbe(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var probeErr atomic.Value
	r := newReadiness(func(ctx context.Context) error {
		<-release
		if ctx.Err() != nil {
			probeErr.Store(ctx.Err())
		}
		return errors.New("no worker")
	}, nil, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.check(ctx), context.Canceled)
	close(release)
	require.EqualError(t, r.check(context.Background()), "no worker")
	require.Nil(t, probeErr.Load(), "the probe ran on its own context")
}

// /readyz says not ready and nothing more; the reason is logged once,
// when the answer changes, not per request.
func TestReadyzNamesNoReason(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	h := Health(func(context.Context) error {
		return errors.New(`no worker polls task queues ["secret-queue"]`)
	}, logger)
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		require.Equal(t, "5", rec.Header().Get("Retry-After"))
		require.NotContains(t, rec.Body.String(), "secret-queue")
		require.Contains(t, rec.Body.String(), "/problems/not-ready")
	}
	require.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("secret-queue")), "logs: %s", logs.String())

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusNotFound, rec.Code, "the probe listener serves no metrics")
}
