package httpapi

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

func TestFinishedBodies(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	done := &job.Job{ID: "j1", Kind: "sleep", State: job.StateSucceeded, Attempt: 1, CreatedAt: at, UpdatedAt: at, CompletedAt: at}
	var c finishedBodies

	b, err := c.body(done, etag(done), "")
	require.NoError(t, err)
	want, err := json.Marshal(NewStatus(done, ""))
	require.NoError(t, err)
	require.Equal(t, string(want)+"\n", string(b))
	again, err := c.body(done, etag(done), "")
	require.NoError(t, err)
	require.Same(t, &b[0], &again[0], "served from the cache")

	// Another base gives the URLs under it.
	abs, err := c.body(done, etag(done), "https://jobs.example.com")
	require.NoError(t, err)
	require.Contains(t, string(abs), `"statusUrl":"https://jobs.example.com/v1/jobs/j1"`)
	require.NotContains(t, string(b), "example.com")

	// Jobs that may still change are not cached.
	require.True(t, cacheable(done))
	require.False(t, cacheable(&job.Job{State: job.StateRunning}))
	require.False(t, cacheable(&job.Job{State: job.StateSucceeded, Callback: &job.Callback{State: job.CallbackPending}}))

	// The cache stays bounded.
	for i := range maxFinishedBodies + 10 {
		j := *done
		j.ID = "j" + strconv.Itoa(i)
		_, err := c.body(&j, etag(&j), "")
		require.NoError(t, err)
	}
	require.LessOrEqual(t, len(c.m), maxFinishedBodies)
}
