package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// markKind is a test-only kind ("test.mark", input {"ms": N}) that notes
// when each job's work started, then works N milliseconds.
type markKind struct {
	mu      sync.Mutex
	started map[string]time.Time
	order   []string
}

func newMarkKind() *markKind { return &markKind{started: map[string]time.Time{}} }

func (m *markKind) kind() job.Kind {
	type input struct {
		MS int `json:"ms"`
	}
	return job.Define(job.KindSpec[input]{
		Name:        "test.mark",
		Description: "Notes when it starts, then works the given milliseconds (tests only).",
		InputSchema: `{"type":"object","properties":{"ms":{"type":"integer","minimum":0}},"additionalProperties":false}`,
		Plan: func(in input) job.Plan {
			return job.Plan{Expected: time.Duration(in.MS) * time.Millisecond, Timeout: time.Minute}
		},
		Run: func(ctx context.Context, in input, _ job.Reporter) (any, error) {
			info, _ := job.InfoFrom(ctx)
			m.mu.Lock()
			if _, ok := m.started[info.ID]; !ok {
				m.started[info.ID] = time.Now()
				m.order = append(m.order, info.ID)
			}
			m.mu.Unlock()
			select {
			case <-time.After(time.Duration(in.MS) * time.Millisecond):
				return map[string]int{"ms": in.MS}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	})
}

// startedAt is when job id's work started; ok is false if it has not.
func (m *markKind) startedAt(id string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.started[id]
	return t, ok
}

// starts is how many jobs' work has started.
func (m *markKind) starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.order)
}

// rank is the position (from 0) of job id among the started jobs, or -1.
func (m *markKind) rank(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.order {
		if o == id {
			return i
		}
	}
	return -1
}

func parseTime(tb testing.TB, v any) time.Time {
	tb.Helper()
	s, ok := v.(string)
	require.True(tb, ok, "not a time: %v", v)
	t, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(tb, err)
	return t
}

func TestDelayedJobRunsOnTime(t *testing.T) {
	t.Parallel()
	mark := newMarkKind()
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{mark.kind()}})

	const delay = 3 * time.Second
	sent := time.Now()
	id, resp := e.submit(`{"kind":"test.mark","input":{"ms":100},"delaySeconds":3}`)
	body := resp.JSON(t)
	require.Equal(t, "scheduled", body["state"])
	runAt := parseTime(t, body["scheduledFor"])
	require.WithinDuration(t, sent.Add(delay), runAt, time.Second)
	// The estimate and the poll interval count from the start time.
	require.False(t, parseTime(t, body["estimatedCompletion"]).Before(runAt))
	require.Contains(t, []string{"3", "4"}, resp.Header.Get("Retry-After"))

	status := e.do(http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusOK, status.StatusCode)
	require.Equal(t, "scheduled", status.JSON(t)["state"])
	require.Nil(t, status.JSON(t)["startedAt"])
	eventually(t, 10*time.Second, "the job listed as scheduled", func() bool {
		list := e.do(http.MethodGet, "/v1/jobs?state=scheduled", "").JSON(t)
		jobs, _ := list["jobs"].([]any)
		return len(jobs) == 1 && jobs[0].(map[string]any)["id"] == id && jobs[0].(map[string]any)["state"] == "scheduled"
	})

	done := e.waitState(id, job.StateSucceeded, delay+workerRoundTrip)
	started, ok := mark.startedAt(id)
	require.True(t, ok)
	require.False(t, started.Before(runAt), "started %s before its time %s", started, runAt)
	t.Logf("the work started %s after its time", started.Sub(runAt))
	// Within a second on an idle machine; the bound allows for load.
	require.Less(t, started.Sub(runAt), 3*time.Second, "started late: %s after its time", started.Sub(runAt))
	final := done.JSON(t)
	// Temporal's start time counts from its receipt of the start.
	require.WithinDuration(t, runAt, parseTime(t, final["scheduledFor"]), 500*time.Millisecond)
	require.False(t, parseTime(t, final["startedAt"]).Before(runAt))

	// A runAt in the past starts the job now.
	id, resp = e.submit(`{"kind":"test.mark","input":{"ms":1},"runAt":"2020-01-01T00:00:00Z"}`)
	require.Equal(t, "queued", resp.JSON(t)["state"])
	require.Nil(t, resp.JSON(t)["scheduledFor"])
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
}

func TestDelayedJobCanceledNeverRuns(t *testing.T) {
	t.Parallel()
	mark := newMarkKind()
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{mark.kind()}})
	runAt := time.Now().Add(3 * time.Second).UTC()
	id, _ := e.submit(fmt.Sprintf(`{"kind":"test.mark","input":{"ms":1},"runAt":%q}`, runAt.Format(time.RFC3339Nano)))

	del := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, del.StatusCode, "body: %s", del.Body)
	// The cancellation does not wait for the start time.
	canceled := e.waitState(id, job.StateCanceled, workerRoundTrip)
	require.Nil(t, canceled.JSON(t)["startedAt"])
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)

	// A job submitted after it, due a moment after its time, has run:
	// the worker was there to run the canceled one had it been due.
	after, _ := e.submit(fmt.Sprintf(`{"kind":"test.mark","input":{"ms":1},"runAt":%q}`, runAt.Add(500*time.Millisecond).Format(time.RFC3339Nano)))
	e.waitState(after, job.StateSucceeded, 5*time.Second+workerRoundTrip)
	_, ran := mark.startedAt(id)
	require.False(t, ran, "the canceled job's work ran")
	require.Equal(t, 1, mark.starts())
}

func TestDelayValidation(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	cases := []struct {
		name, body, field string
	}{
		{"both", `{"kind":"sleep","input":{"seconds":1},"delaySeconds":5,"runAt":"2030-01-01T00:00:00Z"}`, "/runAt"},
		{"negative delay", `{"kind":"sleep","input":{"seconds":1},"delaySeconds":-1}`, "/delaySeconds"},
		{"beyond the maximum delay", `{"kind":"sleep","input":{"seconds":1},"delaySeconds":999999999}`, "/delaySeconds"},
		{"runAt beyond the maximum", `{"kind":"sleep","input":{"seconds":1},"runAt":"2999-01-01T00:00:00Z"}`, "/runAt"},
		{"runAt not a time", `{"kind":"sleep","input":{"seconds":1},"runAt":"tomorrow"}`, "/runAt"},
		{"priority 0", `{"kind":"sleep","input":{"seconds":1},"priority":0}`, "/priority"},
		{"priority 6", `{"kind":"sleep","input":{"seconds":1},"priority":6}`, "/priority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := requireProblem(t, e.do(http.MethodPost, "/v1/jobs", tc.body), http.StatusUnprocessableEntity, "invalid-input")
			errs, _ := p["errors"].([]any)
			require.NotEmpty(t, errs)
			require.Equal(t, tc.field, errs[0].(map[string]any)["field"])
		})
	}
	// Nothing was started.
	list := e.do(http.MethodGet, "/v1/jobs", "").JSON(t)
	require.Empty(t, list["jobs"])

	// An Idempotency-Key works as for any job: the retry, a moment later
	// and so with another start time, is the same job.
	id, first := e.submit(`{"kind":"sleep","input":{"seconds":1},"delaySeconds":60}`, "Idempotency-Key", "delayed-1")
	_, replay := e.submit(`{"kind":"sleep","input":{"seconds":1},"delaySeconds":60}`, "Idempotency-Key", "delayed-1")
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	require.Equal(t, id, replay.JSON(t)["id"])
	require.Equal(t, "scheduled", replay.JSON(t)["state"])
	require.WithinDuration(t, parseTime(t, first.JSON(t)["scheduledFor"]), parseTime(t, replay.JSON(t)["scheduledFor"]), time.Second)
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":2},"delaySeconds":60}`, "Idempotency-Key", "delayed-1"),
		http.StatusUnprocessableEntity, "idempotency-key-reused")
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
}

func TestDelayedJobSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dataDir := t.TempDir()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	first := startProcess(t, dataDir, ports)
	api := processEnv(t, ports.http)
	id, resp := api.submit(`{"kind":"sleep","input":{"seconds":0},"delaySeconds":8}`)
	require.Equal(t, "scheduled", resp.JSON(t)["state"])
	runAt := parseTime(t, resp.JSON(t)["scheduledFor"])

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	<-first.done
	first.done <- nil
	startProcess(t, dataDir, ports)
	// (The restarted server may answer 503 for a moment while it loads.)
	if resp := api.do(http.MethodGet, "/v1/jobs/"+id, ""); resp.StatusCode == http.StatusOK && time.Now().Before(runAt.Add(-time.Second)) {
		require.Equal(t, "scheduled", resp.JSON(t)["state"])
	}
	eventually(t, 60*time.Second, "the delayed job succeeded after the restart", func() bool {
		return api.do(http.MethodGet, "/v1/jobs/"+id, "").StatusCode == http.StatusSeeOther
	})
	final := api.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(t)
	require.False(t, parseTime(t, final["startedAt"]).Before(runAt), "started before its time")
}
