package httpapi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTenantLimitsWeight(t *testing.T) {
	t.Parallel()
	def := Limits{Rate: 100, MaxActive: 10}
	got, err := ParseTenantLimits([]string{"big:weight=0.5", "vip:rate=5:weight=10"}, def)
	require.NoError(t, err)
	require.Equal(t, Limits{Rate: 100, MaxActive: 10, Weight: 0.5}, got["big"])
	require.Equal(t, Limits{Rate: 5, MaxActive: 10, Weight: 10}, got["vip"])
	for _, bad := range []string{"a:weight=0", "a:weight=1001", "a:weight=x", "a:weight=-1"} {
		_, err := ParseTenantLimits([]string{bad}, def)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "weight", bad)
	}
}
