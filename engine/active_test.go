package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecentAccepts(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	var r recentAccepts
	for ms := 0; ms < 1000; ms += 100 {
		r.add(at(ms), at(ms-600))
	}
	// Kept: 400 … 900 (older than 600 ms before the last add are dropped).
	require.Len(t, r.times, 6)
	require.Equal(t, at(400), r.times[0])

	cases := []struct {
		name   string
		cutoff time.Time
		want   int
	}{
		{"before all", at(-1), 6},
		{"at the first is not after it", at(400), 5},
		{"between", at(650), 3},
		{"at the last", at(900), 0},
		{"after all", at(5000), 0},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, r.after(tc.cutoff), tc.name)
	}

	// A clock that steps back does not break the order counts rely on.
	r.add(at(100), at(-1))
	require.Len(t, r.times, 7)
	require.Equal(t, at(900), r.times[6])
	require.Equal(t, 2, r.after(at(850)))

	// Everything expired: only the new time is kept.
	r.add(at(10_000), at(9_000))
	require.Equal(t, []time.Time{at(10_000)}, r.times)
}

// BenchmarkAccepted is the cost of noting one acceptance with a
// visibilityLag's worth of earlier ones kept, at a steady 2,000 per second.
func BenchmarkAccepted(b *testing.B) {
	var r recentAccepts
	t := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	step := time.Second / 2000
	for b.Loop() {
		t = t.Add(step)
		r.add(t, t.Add(-visibilityLag-time.Second))
		_ = r.after(t.Add(-visibilityLag))
	}
	b.ReportMetric(float64(len(r.times)), "kept")
}
