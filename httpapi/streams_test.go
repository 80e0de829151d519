package httpapi_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/httpapi/httpapitest"
)

// keyed is a server with API keys "key-a" (tenant a) and "key-b" (tenant
// b) and the given limits.
func keyed(t *testing.T, limits httpapi.Limits, perTenant map[string]httpapi.Limits) *httpapitest.Server {
	t.Helper()
	return httpapitest.NewServer(t, httpapi.Config{
		APIKeys: []httpapi.APIKey{
			{Tenant: "a", Hash: sha256.Sum256([]byte("key-a"))},
			{Tenant: "b", Hash: sha256.Sum256([]byte("key-b"))},
		},
		Limits:       limits,
		TenantLimits: perTenant,
	})
}

// openStream opens a job's event stream and reads its first status event;
// closing it (or the test's end) disconnects the client.
func openStream(t *testing.T, srv *httpapitest.Server, id, key string) (close func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/jobs/"+id+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: status" {
	}
	require.NoError(t, sc.Err())
	closed := false
	close = func() {
		if !closed {
			closed = true
			cancel()
			resp.Body.Close()
		}
	}
	t.Cleanup(close)
	return close
}

func TestStreamsAreBoundedPerTenant(t *testing.T) {
	t.Parallel()
	srv := keyed(t, httpapi.Limits{MaxStreams: 2}, map[string]httpapi.Limits{"b": {MaxStreams: 1}})
	authA, authB := []string{"Authorization", "Bearer key-a"}, []string{"Authorization", "Bearer key-b"}
	idA, idB := mustSubmit(t, srv, authA...), mustSubmit(t, srv, authB...)
	srv.Jobs.Start(idA)
	srv.Jobs.Start(idB)

	first := openStream(t, srv, idA, "key-a")
	openStream(t, srv, idA, "key-a")

	// Tenant a holds its two: a third stream and a long-poll are refused.
	for _, refused := range []answer{
		call(t, srv, http.MethodGet, "/v1/jobs/"+idA+"/events", "", authA...),
		call(t, srv, http.MethodGet, "/v1/jobs/"+idA, "", append(authA, "Prefer", "wait=5")...),
	} {
		requireProblem(t, refused, http.StatusTooManyRequests, "too-many-streams")
		require.Equal(t, "5", refused.header.Get("Retry-After"))
		require.Equal(t, `"streams";q=2`, refused.header.Get("RateLimit-Policy"))
	}
	// A plain read holds nothing.
	require.Equal(t, http.StatusOK, call(t, srv, http.MethodGet, "/v1/jobs/"+idA, "", authA...).code)

	// A waiting submission is accepted all the same, answered at once.
	start := time.Now()
	waited := call(t, srv, http.MethodPost, "/v1/jobs", sleepJob, append(authA, "Prefer", "wait=20")...)
	require.Equal(t, http.StatusAccepted, waited.code, "body: %s", waited.body)
	require.Empty(t, waited.header.Get("Preference-Applied"))
	require.Less(t, time.Since(start), 10*time.Second, "the submission waited without a stream slot")
	newID := waited.json(t)["id"].(string)
	require.Equal(t, http.StatusOK, call(t, srv, http.MethodGet, "/v1/jobs/"+newID, "", authA...).code)

	// Tenant b has a slot of its own, and then none.
	openStream(t, srv, idB, "key-b")
	requireProblem(t, call(t, srv, http.MethodGet, "/v1/jobs/"+idB+"/events", "", authB...), http.StatusTooManyRequests, "too-many-streams")

	// A client that goes away frees its slot. (The long-poll sends an
	// entity tag the job no longer has, so it answers at once: it holds
	// the slot while it runs, and the test does not wait out wait=1.)
	first()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := call(t, srv, http.MethodGet, "/v1/jobs/"+idA, "", append(authA, "Prefer", "wait=1", "If-None-Match", `W/"stale"`)...)
		if a.code == http.StatusOK {
			require.Equal(t, "wait=1", a.header.Get("Preference-Applied"))
			break
		}
		requireProblem(t, a, http.StatusTooManyRequests, "too-many-streams")
		require.True(t, time.Now().Before(deadline), "the closed stream's slot was not freed")
		time.Sleep(20 * time.Millisecond)
	}
}

// A long-poll's slot is freed when it answers, a stream's when its job
// ends, a waiting submission's when it answers.
func TestStreamSlotsAreReleasedWhenRequestsEnd(t *testing.T) {
	t.Parallel()
	// Waits are capped at 20ms, so each long-poll and the waiting
	// submission answer at the end of their wait without the test
	// spending wait=1's second on each.
	srv := httpapitest.NewServer(t, httpapi.Config{
		APIKeys: []httpapi.APIKey{{Tenant: "a", Hash: sha256.Sum256([]byte("key-a"))}},
		Limits:  httpapi.Limits{MaxStreams: 1},
		MaxWait: 20 * time.Millisecond,
	})
	auth := []string{"Authorization", "Bearer key-a"}
	id := mustSubmit(t, srv, auth...)
	srv.Jobs.Start(id)

	for range 3 {
		a := call(t, srv, http.MethodGet, "/v1/jobs/"+id, "", append(auth, "Prefer", "wait=1")...)
		require.Equal(t, http.StatusOK, a.code, "body: %s", a.body)
	}
	w := call(t, srv, http.MethodPost, "/v1/jobs", sleepJob, append(auth, "Prefer", "wait=1")...)
	require.Equal(t, http.StatusAccepted, w.code)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/"+id+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer key-a")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	srv.Jobs.Succeed(id, map[string]any{"ok": true})
	sc := bufio.NewScanner(resp.Body)
	var last string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			last = sc.Text()
		}
	}
	require.Contains(t, last, `"state":"succeeded"`, "the stream ends with the job")
	// The ended stream's slot is free again.
	other := mustSubmit(t, srv, auth...)
	openStream(t, srv, other, "key-a")
}

func TestParseTenantLimitsStreams(t *testing.T) {
	t.Parallel()
	def := httpapi.Limits{Rate: 100, MaxStreams: 100}
	got, err := httpapi.ParseTenantLimits([]string{"dash:streams=1000", "small:rate=5"}, def)
	require.NoError(t, err)
	require.Equal(t, httpapi.Limits{Rate: 100, MaxStreams: 1000}, got["dash"])
	require.Equal(t, httpapi.Limits{Rate: 5, MaxStreams: 100}, got["small"])
	for _, bad := range []string{"a:streams=-1", "a:streams=x", "a:streams="} {
		_, err := httpapi.ParseTenantLimits([]string{bad}, def)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "streams", bad)
	}
}
