package blob_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/blob"
)

func mustOpen(t *testing.T, dir string) *blob.Store {
	t.Helper()
	s, err := blob.Open(context.Background(), "file://"+dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A tenant's usage is the bytes of its blobs: written ones count, replaced
// ones count once at their new size, deleted ones (one by one or by prefix)
// stop counting, and blobs of no tenant or another tenant do not count.
func TestUsageCountsTenantsBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	usage := func(tenant string) int64 {
		t.Helper()
		n, err := s.Usage(ctx, tenant)
		require.NoError(t, err)
		return n
	}
	require.Zero(t, usage("acme"))
	require.NoError(t, s.Put(ctx, "results/j1/result.json", bytes.Repeat([]byte("a"), 100), blob.Attrs{Tenant: "acme"}))
	require.NoError(t, s.Put(ctx, "work/j2/batch/0.json", bytes.Repeat([]byte("b"), 30), blob.Attrs{Tenant: "acme"}))
	require.NoError(t, s.Put(ctx, "work/j2/batch/1.json", bytes.Repeat([]byte("b"), 20), blob.Attrs{Tenant: "acme"}))
	require.NoError(t, s.Put(ctx, "results/j3/result.json", bytes.Repeat([]byte("c"), 70), blob.Attrs{Tenant: "bravo/with:odd names"}))
	require.NoError(t, s.Put(ctx, "results/j4/result.json", bytes.Repeat([]byte("d"), 500), blob.Attrs{}))
	require.EqualValues(t, 150, usage("acme"))
	require.EqualValues(t, 70, usage("bravo/with:odd names"))

	require.NoError(t, s.Put(ctx, "results/j1/result.json", bytes.Repeat([]byte("a"), 10), blob.Attrs{Tenant: "acme"}))
	require.EqualValues(t, 60, usage("acme"), "a replaced blob counts at its new size")
	require.NoError(t, s.DeletePrefix(ctx, "work/j2/"))
	require.EqualValues(t, 10, usage("acme"))
	require.NoError(t, s.Delete(ctx, "results/j1/result.json"))
	require.Zero(t, usage("acme"))
	keys, err := s.List(ctx, "results/")
	require.NoError(t, err)
	require.Equal(t, []string{"results/j3/result.json", "results/j4/result.json"}, keys)

	// Another process on the same storage (an API beside this worker)
	// sees the same usage, from the bucket, once its cache is stale.
	other := mustOpen(t, s.String()[len("file://"):])
	n, err := other.Usage(ctx, "bravo/with:odd names")
	require.NoError(t, err)
	require.EqualValues(t, 70, n)
}

// Under a quota, a write that would pass it fails with a *QuotaError and
// leaves nothing; a tenant at its quota is refused at once (CheckQuota
// too); other tenants and tenants without a quota are not affected; a
// deleted blob gives its space back.
func TestQuotaBoundsWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	s.LimitTenants(func(tenant string) int64 {
		if tenant == "acme" {
			return 100
		}
		return 0
	})
	require.NoError(t, s.Put(ctx, "results/a/1", bytes.Repeat([]byte("x"), 60), blob.Attrs{Tenant: "acme"}))
	require.NoError(t, s.CheckQuota(ctx, "acme"))

	err := s.Put(ctx, "results/a/2", bytes.Repeat([]byte("x"), 41), blob.Attrs{Tenant: "acme"})
	var q *blob.QuotaError
	require.ErrorAs(t, err, &q)
	require.True(t, errors.Is(err, blob.ErrQuotaExceeded))
	require.EqualValues(t, 100, q.Limit)
	require.Contains(t, err.Error(), "quota of 100 bytes")
	ok, err := s.Exists(ctx, "results/a/2")
	require.NoError(t, err)
	require.False(t, ok, "a refused write leaves no blob")

	require.NoError(t, s.Put(ctx, "results/a/2", bytes.Repeat([]byte("x"), 40), blob.Attrs{Tenant: "acme"}), "exactly up to the quota")
	require.ErrorAs(t, s.CheckQuota(ctx, "acme"), &q)
	_, err = s.Create(ctx, "results/a/3", blob.Attrs{Tenant: "acme"})
	require.ErrorAs(t, err, &q, "a tenant at its quota writes nothing")
	require.NoError(t, s.Put(ctx, "results/a/1", bytes.Repeat([]byte("x"), 50), blob.Attrs{Tenant: "acme"}), "replacing a blob frees its old size first")

	require.NoError(t, s.Put(ctx, "results/b/1", bytes.Repeat([]byte("x"), 1000), blob.Attrs{Tenant: "bravo"}), "no quota")
	require.NoError(t, s.Put(ctx, "results/c/1", bytes.Repeat([]byte("x"), 1000), blob.Attrs{}), "no tenant")

	require.NoError(t, s.Delete(ctx, "results/a/1"))
	require.NoError(t, s.CheckQuota(ctx, "acme"))
	require.NoError(t, s.Put(ctx, "results/a/3", bytes.Repeat([]byte("x"), 60), blob.Attrs{Tenant: "acme"}))
}

// What another process writes counts here once the usage is listed again
// (within a couple of seconds): the bound's precision across processes.
func TestQuotaSeesOtherProcessesWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "shared")
	api, worker := mustOpen(t, dir), mustOpen(t, dir)
	api.LimitTenants(func(string) int64 { return 100 })
	require.NoError(t, api.CheckQuota(ctx, "acme"))
	require.NoError(t, worker.Put(ctx, "results/a/1", bytes.Repeat([]byte("x"), 150), blob.Attrs{Tenant: "acme"}))
	deadline := time.Now().Add(10 * time.Second)
	for api.CheckQuota(ctx, "acme") == nil {
		require.True(t, time.Now().Before(deadline), "the API never saw the worker's write")
		time.Sleep(100 * time.Millisecond)
	}
}
