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

// blobs=BYTES sets a tenant's blob storage quota; the others keep the
// default's (JOBGATE_TENANT_BLOB_QUOTA).
func TestParseTenantLimitsBlobs(t *testing.T) {
	t.Parallel()
	def := Limits{Rate: 100, BlobBytes: 1 << 30}
	got, err := ParseTenantLimits([]string{"big:blobs=107374182400", "free:blobs=0", "other:rate=5"}, def)
	require.NoError(t, err)
	require.EqualValues(t, 100<<30, got["big"].BlobBytes)
	require.Zero(t, got["free"].BlobBytes, "0 is no quota")
	require.EqualValues(t, 1<<30, got["other"].BlobBytes)
	for _, bad := range []string{"a:blobs=-1", "a:blobs=1GB", "a:blobs="} {
		_, err := ParseTenantLimits([]string{bad}, def)
		require.ErrorContains(t, err, "blobs", bad)
	}
}
