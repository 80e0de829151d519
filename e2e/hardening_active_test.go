package e2e

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jobgate/jobgate/httpapi"
)

// 100 submissions at once against a cap of 10 active jobs: at most 10 are
// accepted and every other one is a 429 (or, on a machine so loaded that a
// start outlasts the call timeout, a 503), and Temporal holds exactly the
// accepted jobs.
func TestActiveCapHoldsUnderConcurrentSubmissions(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, limits: httpapi.Limits{MaxActive: 10}})
	const burst = 100
	var wg sync.WaitGroup
	var accepted, refused, unavailable atomic.Int64
	others := make(chan string, burst)
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.send(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":60}}`)
			if err != nil {
				others <- err.Error()
				return
			}
			switch resp.StatusCode {
			case http.StatusAccepted:
				accepted.Add(1)
			case http.StatusTooManyRequests:
				refused.Add(1)
			case http.StatusServiceUnavailable:
				unavailable.Add(1)
			default:
				others <- string(resp.Body)
			}
		}()
	}
	wg.Wait()
	close(others)
	for body := range others {
		t.Errorf("neither 202 nor 429: %s", body)
	}
	t.Logf("%d accepted, %d refused, %d unavailable", accepted.Load(), refused.Load(), unavailable.Load())
	require.LessOrEqual(t, accepted.Load(), int64(10), "the cap of 10 was passed")
	require.EqualValues(t, burst, accepted.Load()+refused.Load()+unavailable.Load())
	if unavailable.Load() == 0 {
		require.Positive(t, accepted.Load())
		all := `TaskQueue = '` + e.TaskQueue + `'`
		e.requireSettledCount(all, accepted.Load(), "Temporal holds exactly the accepted jobs")
	}
}

// A submission whose start fails gives its place under the cap back: after
// three failed starts against a cap of three, three submissions are
// accepted.
func TestActiveCapReleasedWhenStartFails(t *testing.T) {
	t.Parallel()
	var failures atomic.Int64
	failures.Store(3)
	failStarts := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == workflowservice.WorkflowService_StartWorkflowExecution_FullMethodName && failures.Add(-1) >= 0 {
			return status.Error(codes.InvalidArgument, "refused by the test")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	e := mustStartEnv(t, envOptions{noWorker: true, limits: httpapi.Limits{MaxActive: 3},
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(failStarts)}})
	for range 3 {
		resp := e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":60}}`)
		require.NotEqual(t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)
		require.NotEqual(t, http.StatusTooManyRequests, resp.StatusCode, "body: %s", resp.Body)
	}
	for range 3 {
		e.submit(`{"kind":"sleep","input":{"seconds":60}}`)
	}
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":60}}`), http.StatusTooManyRequests, "too-many-active-jobs")
}
