package job

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A multi-step job past its estimate is expected to end when its progress,
// at its rate so far, says; before the estimate, or without progress, the
// estimate stands.
func TestExpectedEnd(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		progress *Progress
		now      time.Time
		want     time.Time
	}{
		{"before the estimate", &Progress{Current: 1, Total: 4}, t0.Add(5 * time.Second), t0.Add(10 * time.Second)},
		{"past it, a quarter done in 20 s", &Progress{Current: 1, Total: 4}, t0.Add(20 * time.Second), t0.Add(80 * time.Second)},
		{"past it, no progress", nil, t0.Add(20 * time.Second), t0.Add(10 * time.Second)},
		{"past it, unknown total", &Progress{Current: 3}, t0.Add(20 * time.Second), t0.Add(10 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := &Job{StartedAt: t0, EstimatedCompletion: t0.Add(10 * time.Second), Progress: tc.progress}
			require.Equal(t, tc.want, j.ExpectedEnd(tc.now))
		})
	}
}
