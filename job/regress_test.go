package job_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

// A later look-up of a job regresses when it shows less than the one
// before: an earlier update, a lower attempt, a start or progress lost. A
// finished job's status never does.
func TestRegresses(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := job.Job{State: job.StateRunning, Attempt: 2, StartedAt: t0, UpdatedAt: t0.Add(time.Second), Progress: &job.Progress{Current: 5, Total: 10}}
	tests := []struct {
		name   string
		change func(*job.Job)
		want   bool
	}{
		{"the same", func(*job.Job) {}, false},
		{"newer progress", func(j *job.Job) {
			j.Progress = &job.Progress{Current: 6, Total: 10}
			j.UpdatedAt = t0.Add(2 * time.Second)
		}, false},
		{"retrying", func(j *job.Job) { j.Attempt = 3; j.Retry = &job.Retry{LastError: job.Failure{Type: "x"}} }, false},
		{"earlier update", func(j *job.Job) { j.UpdatedAt = t0 }, true},
		{"start lost", func(j *job.Job) { j.StartedAt = time.Time{} }, true},
		{"progress lost", func(j *job.Job) { j.Progress = nil }, true},
		{"lower attempt", func(j *job.Job) { j.Attempt = 1 }, true},
		{"the old bug: back at its creation", func(j *job.Job) {
			j.StartedAt, j.Progress, j.UpdatedAt, j.Attempt = time.Time{}, nil, t0.Add(-time.Minute), 1
		}, true},
		{"finished, whatever it shows", func(j *job.Job) { j.State = job.StateSucceeded; j.Progress = nil; j.UpdatedAt = t0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := prev
			tt.change(&next)
			require.Equal(t, tt.want, next.Regresses(&prev))
		})
	}
	require.False(t, prev.Regresses(nil), "a first look-up")
}
