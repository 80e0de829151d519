package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/job"
)

// callCounter counts the gRPC calls a Temporal client makes, by method.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.calls[method[strings.LastIndex(method, "/")+1:]]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *callCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.calls
	c.calls = map[string]int{}
	return old
}

// BenchmarkLongPollers measures what N clients long-polling one running job
// cost in Temporal calls: all of them share one watcher, so the cost stays
// flat as N grows. Run it with:
//
//	go test -run '^$' -bench LongPollers -benchtime 1x ./e2e/
func BenchmarkLongPollers(b *testing.B) {
	const window = 5 * time.Second
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("pollers=%d", n), func(b *testing.B) {
			counter := &callCounter{calls: map[string]int{}}
			e := mustStartEnv(b, envOptions{dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.interceptor)}})
			e.HTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 10, MaxConnsPerHost: 0}, Timeout: time.Minute}
			id, _ := e.submit(`{"kind":"sleep","input":{"seconds":600}}`)
			e.waitState(id, job.StateRunning, 10*time.Second)

			for b.Loop() {
				var answers atomic.Int64
				ctx, cancel := context.WithTimeout(context.Background(), window)
				var wg sync.WaitGroup
				counter.reset()
				start := time.Now()
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						etag := ""
						for ctx.Err() == nil {
							req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/jobs/"+id, nil)
							req.Header.Set("Prefer", "wait=10")
							if etag != "" {
								req.Header.Set("If-None-Match", etag)
							}
							resp, err := e.HTTP.Do(req)
							if err != nil {
								continue
							}
							etag = resp.Header.Get("ETag")
							resp.Body.Close()
							answers.Add(1)
						}
					}()
				}
				wg.Wait()
				cancel()
				elapsed := time.Since(start).Seconds()
				calls := counter.reset()
				total := 0
				for _, c := range calls {
					total += c
				}
				b.ReportMetric(float64(total)/elapsed, "temporal-calls/s")
				b.ReportMetric(float64(calls["DescribeWorkflowExecution"])/elapsed, "describes/s")
				b.ReportMetric(float64(answers.Load())/elapsed, "answers/s")
				b.ReportMetric(float64(n)*4, "naive-describes/s")
			}
			e.do(http.MethodDelete, "/v1/jobs/"+id, "")
		})
	}
}
