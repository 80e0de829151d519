package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
)

// stream is an open event stream of a job, read in the background.
type stream struct {
	cancel func()
	// events counts the status events read; ended is closed when the
	// stream ends.
	events atomic.Int64
	ended  chan struct{}
}

// openStream opens a job's event stream as the client of auth and waits
// for its first status event; the stream is closed when the test ends.
// It returns nil and the answer when the stream is refused.
func (e *env) openStream(t *testing.T, id string, auth ...string) (*stream, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/jobs/"+id+"/events", nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(auth); i += 2 {
		req.Header.Set(auth[i], auth[i+1])
	}
	// No client timeout: a stream lasts as long as the test needs it.
	resp, err := (&http.Client{Transport: conformTo(t, nil)}).Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, resp
	}
	s := &stream{ended: make(chan struct{})}
	s.cancel = func() { cancel(); resp.Body.Close() }
	t.Cleanup(s.cancel)
	first := make(chan struct{})
	go func() {
		defer close(s.ended)
		r := newSSEReader(resp.Body)
		for {
			ev, err := r.next()
			if err != nil {
				// The stream's end, its cancellation by the test, or
				// data that is not JSON: then no more events count, and
				// a test waiting for one fails on that.
				return
			}
			if ev.event != "status" {
				continue
			}
			if s.events.Add(1) == 1 {
				close(first)
			}
		}
	}()
	select {
	case <-first:
	case <-s.ended:
		t.Fatalf("the event stream of %s ended before its first event", id)
	case <-time.After(workerRoundTrip):
		t.Fatalf("no first event on the stream of %s", id)
	}
	return s, resp
}

// Each tenant may hold its maximum of event streams and long-polls open;
// beyond, 429 with Retry-After, while another tenant is unaffected and a
// closed stream frees its slot.
func TestStreamsAreBoundedPerTenant(t *testing.T) {
	t.Parallel()
	a, b := fmt.Sprintf("streams-a-%d", time.Now().UnixNano()), fmt.Sprintf("streams-b-%d", time.Now().UnixNano())
	e := mustStartEnv(t, envOptions{
		apiKeys: map[string]string{a: "key-" + a, b: "key-" + b},
		limits:  httpapi.Limits{MaxStreams: 3},
	})
	authA, authB := []string{"Authorization", "Bearer key-" + a}, []string{"Authorization", "Bearer key-" + b}
	idA, _ := e.submit(`{"kind":"sleep","input":{"seconds":120}}`, authA...)
	idB, _ := e.submit(`{"kind":"sleep","input":{"seconds":120}}`, authB...)
	e.waitStateAs(idA, job.StateRunning, authA)

	var held []*stream
	for range 3 {
		s, _ := e.openStream(t, idA, authA...)
		require.NotNil(t, s)
		held = append(held, s)
	}
	_, refused := e.openStream(t, idA, authA...)
	require.Equal(t, http.StatusTooManyRequests, refused.StatusCode)
	require.Equal(t, "5", refused.Header.Get("Retry-After"))
	poll := e.do(http.MethodGet, "/v1/jobs/"+idA, "", append(authA, "Prefer", "wait=5")...)
	requireProblem(t, poll, http.StatusTooManyRequests, "too-many-streams")
	require.Equal(t, "5", poll.Header.Get("Retry-After"))
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/jobs/"+idA, "", authA...).StatusCode, "a plain GET is not a stream")

	// A waiting submission is accepted at once, not refused.
	id, waited := e.submit(`{"kind":"sleep","input":{"seconds":1}}`, append(authA, "Prefer", "wait=30")...)
	require.Empty(t, waited.Header.Get("Preference-Applied"))
	e.waitStateAs(id, job.StateSucceeded, authA)

	// Another tenant has slots of its own.
	sb, _ := e.openStream(t, idB, authB...)
	require.NotNil(t, sb, "tenant %s was refused a stream because of tenant %s's", b, a)

	// Closing a stream frees its slot.
	held[0].cancel()
	eventually(t, 10*time.Second, "a slot freed by the closed stream", func() bool {
		s, resp := e.openStream(t, idA, authA...)
		if s == nil {
			require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			return false
		}
		return true
	})
}

// Many streams on many running jobs cost Temporal at most the watch bound
// of look-ups per second, however many there are, and progress still
// reaches every stream.
func TestWatchLookUpsStayWithinTheBound(t *testing.T) {
	t.Parallel()
	const (
		jobs      = 30
		perJob    = 2
		perSecond = 20
		window    = 5 * time.Second
	)
	var describes atomic.Int64
	count := grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/DescribeWorkflowExecution") {
			describes.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	e := mustStartEnv(t, envOptions{
		apiDialOptions: []grpc.DialOption{count}, // the API's calls alone
		watchInterval:  20 * time.Millisecond,    // unbounded: 50 look-ups/s per job
		watchRate:      perSecond,
		workerSlots:    jobs + 5,
	})
	var ids []string
	for range jobs {
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":300}}`)
		ids = append(ids, id)
	}
	for _, id := range ids {
		e.waitState(id, job.StateRunning, workerRoundTrip)
	}
	// Each stream's first event comes from its own read of the job, at
	// once, so opening them one after another is quick.
	var streams []*stream
	for _, id := range ids {
		for range perJob {
			s, resp := e.openStream(t, id)
			require.NotNil(t, s, "stream of %s refused: %v", id, resp)
			streams = append(streams, s)
		}
	}
	require.Len(t, streams, jobs*perJob)

	// A stream whose first status (its own read) is newer than the
	// watcher's may read the job once more when its first wait ends
	// (a keep-alive, 1s here): once per stream, so before the window.
	time.Sleep(2 * time.Second)
	before := make([]int64, len(streams))
	for i, s := range streams {
		before[i] = s.events.Load()
	}
	start, n0 := time.Now(), describes.Load()
	time.Sleep(window)
	n, elapsed := describes.Load()-n0, time.Since(start)
	rate := float64(n) / elapsed.Seconds()
	t.Logf("%d streams on %d running jobs: %d Describe calls in %s (%.1f/s; bound %d/s; unbounded at a 20ms interval: %d/s)",
		len(streams), jobs, n, elapsed.Round(time.Millisecond), rate, perSecond, jobs*50)
	// The bound's burst, and a few look-ups on the edges of the window
	// (granted before it, counted in it) or read by a stream's first
	// wait: nowhere near the 1,500/s of the unbounded interval.
	require.LessOrEqual(t, float64(n), perSecond*elapsed.Seconds()+float64(perSecond/10)+8, "Describe calls beyond the watch bound")

	// Progress moves every second; under the bound each job still gets
	// its turns, and every stream its events.
	eventually(t, 30*time.Second, "a new event on every stream", func() bool {
		for i, s := range streams {
			if s.events.Load() <= before[i] {
				return false
			}
		}
		return true
	})
}
