package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A Timestamp renders as time.Time's own JSON of the same instant in UTC.
func TestTimestampJSON(t *testing.T) {
	zone := time.FixedZone("X", 5*3600+1800)
	for _, tm := range []time.Time{
		time.Date(2026, 11, 21, 23, 59, 58, 123456789, zone),
		time.Date(2026, 11, 21, 23, 59, 58, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.Local),
	} {
		got, err := json.Marshal(Timestamp(tm))
		require.NoError(t, err)
		want, err := json.Marshal(tm.UTC())
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
}
