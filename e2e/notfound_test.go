package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/jobgate/jobgate/job"
)

// during returns the calls made while f ran (its caller makes no other).
func (c *callCounter) during(f func()) map[string]int {
	c.reset()
	f()
	return c.reset()
}

// foreignJobs is a deployment where tenant bravo has a finished job, which
// bravo has read (so the API caches it), and a running one; alpha reads
// through api, whose Temporal calls are counted. The worker runs in
// another env on the same task queue, so that api makes no call but the
// requests' own.
type foreignJobs struct {
	api                  *env
	calls                *callCounter
	finished, running    string
	alphaAuth, bravoAuth []string
}

func mustStartForeignJobs(tb testing.TB) *foreignJobs {
	tb.Helper()
	keys := map[string]string{"alpha": keyA, "bravo": keyB}
	worker := mustStartEnv(tb, envOptions{apiKeys: keys})
	calls := &callCounter{calls: map[string]int{}}
	api := mustStartEnv(tb, envOptions{noWorker: true, apiKeys: keys, taskQueue: worker.TaskQueue,
		dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(calls.interceptor)}})
	f := &foreignJobs{api: api, calls: calls, alphaAuth: bearer(keyA), bravoAuth: bearer(keyB)}
	f.finished, _ = worker.submit(`{"kind":"sleep","input":{"seconds":0}}`, f.bravoAuth...)
	f.running, _ = worker.submit(`{"kind":"sleep","input":{"seconds":600}}`, f.bravoAuth...)
	api.waitStateAs(f.finished, job.StateSucceeded, f.bravoAuth)
	api.waitStateAs(f.running, job.StateRunning, f.bravoAuth)
	return f
}

// Another tenant's job, finished (and cached for its own tenant) or
// running, answers every job endpoint exactly as an id that names no job
// does: the same status, headers and body (but for the id in the
// request's path), after the same Temporal calls. Nothing, not even an
// answer from the cache, tells another tenant that a job exists.
func TestAnotherTenantsJobAnswersLikeAnUnknownID(t *testing.T) {
	t.Parallel()
	f := mustStartForeignJobs(t)
	own := f.calls.during(func() {
		resp := f.api.do(http.MethodGet, "/v1/jobs/"+f.finished+"?redirect=false", "", f.bravoAuth...)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
	require.Empty(t, own, "bravo's own finished job is answered from the cache")

	unknown := uuid.NewString()
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/v1/jobs/{id}"},
		{http.MethodGet, "/v1/jobs/{id}?redirect=false"},
		{http.MethodGet, "/v1/jobs/{id}/result"},
		{http.MethodGet, "/v1/operations/{id}"},
		{http.MethodDelete, "/v1/jobs/{id}"},
		{http.MethodPost, "/v1/jobs/{id}/rerun"},
	} {
		t.Run(req.method+" "+req.path, func(t *testing.T) {
			type answer struct {
				status   int
				header   http.Header
				body     string
				temporal map[string]int
			}
			ask := func(id string) answer {
				var resp response
				calls := f.calls.during(func() {
					resp = f.api.do(req.method, strings.ReplaceAll(req.path, "{id}", id), "", append(f.alphaAuth, "X-Request-Id", "probe-404")...)
				})
				h := resp.Header.Clone()
				h.Del("Date")
				return answer{resp.StatusCode, h, strings.ReplaceAll(string(resp.Body), id, "{id}"), calls}
			}
			want := ask(unknown)
			require.Equal(t, http.StatusNotFound, want.status)
			require.Contains(t, want.body, "not-found")
			require.NotEmpty(t, want.temporal, "an unknown id is looked up in Temporal")
			for name, id := range map[string]string{"finished and cached": f.finished, "running": f.running} {
				require.Equal(t, want, ask(id), "another tenant's %s job answers as an unknown id", name)
			}
		})
	}
}

// BenchmarkNotFound prints how long another tenant's finished (cached)
// job, running job and an unknown id take to answer 404, side by side
// (and bravo's own cached job for contrast):
//
//	go test ./e2e -run '^$' -bench NotFound -benchtime 1x
func BenchmarkNotFound(b *testing.B) {
	f := mustStartForeignJobs(b)
	cases := []struct {
		name string
		id   func() string
		auth []string
		want int
	}{
		{"foreign-finished-µs", func() string { return f.finished }, f.alphaAuth, http.StatusNotFound},
		{"foreign-running-µs", func() string { return f.running }, f.alphaAuth, http.StatusNotFound},
		{"unknown-µs", uuid.NewString, f.alphaAuth, http.StatusNotFound},
		{"own-cached-µs", func() string { return f.finished }, f.bravoAuth, http.StatusOK},
	}
	const rounds = 300
	took := make([][]time.Duration, len(cases))
	for range b.N {
		for range rounds {
			// Interleaved, so that the machine's load weighs on each alike.
			for i, c := range cases {
				start := time.Now()
				resp := f.api.do(http.MethodGet, "/v1/jobs/"+c.id()+"?redirect=false", "", c.auth...)
				took[i] = append(took[i], time.Since(start))
				if resp.StatusCode != c.want {
					b.Fatalf("%s: %d, want %d: %s", c.name, resp.StatusCode, c.want, resp.Body)
				}
			}
		}
	}
	for i, c := range cases {
		slices.Sort(took[i])
		median := took[i][len(took[i])/2]
		b.ReportMetric(float64(median.Microseconds()), c.name)
		b.Logf("%-20s median %v, p90 %v over %d requests", c.name, median, took[i][len(took[i])*9/10], len(took[i]))
	}
}
