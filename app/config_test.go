package app

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/activities"
)

func TestGRPCCompression(t *testing.T) {
	none, gzip := &client.GrpcCompressionNone{}, &client.GrpcCompressionGzip{}
	for _, tc := range []struct {
		setting, address string
		want             client.GrpcCompression
	}{
		{"auto", "127.0.0.1:7233", none},
		{"auto", "127.9.9.9:7233", none},
		{"auto", "localhost:7233", none},
		{"auto", "[::1]:7233", none},
		{"auto", "LocalHost.:7233", none},
		{"auto", "0.0.0.0:7233", none},
		{"auto", "temporal:7233", gzip},
		{"auto", "10.0.0.5:7233", gzip},
		{"auto", "my-ns.tmprl.cloud:7233", gzip},
		{"auto", "no-port", gzip},
		{"gzip", "127.0.0.1:7233", gzip},
		{"none", "temporal:7233", none},
	} {
		require.IsType(t, tc.want, grpcCompression(tc.setting, tc.address), "%s to %s", tc.setting, tc.address)
	}
}

// JOBGATE_RESULT_BLOB_THRESHOLD unset is activities.DefaultResultBlobThreshold;
// 0 is 0, every result to blob storage, all the way to the worker.
func TestResultBlobThreshold(t *testing.T) {
	cfg, err := loadConfig()
	require.NoError(t, err)
	require.EqualValues(t, activities.DefaultResultBlobThreshold, cfg.ResultBlobThreshold)
	t.Setenv("JOBGATE_RESULT_BLOB_THRESHOLD", "0")
	cfg, err = loadConfig()
	require.NoError(t, err)
	require.Zero(t, cfg.ResultBlobThreshold)
	require.Zero(t, workerOptions(cfg, nil, nil, activities.Outbound{}, nil).ResultBlobThreshold)
	t.Setenv("JOBGATE_RESULT_BLOB_THRESHOLD", "-1")
	_, err = loadConfig()
	require.ErrorContains(t, err, "JOBGATE_RESULT_BLOB_THRESHOLD must be between 0 and")
}

func TestLoadConfigRefusesUnknownCompression(t *testing.T) {
	t.Setenv("JOBGATE_TEMPORAL_COMPRESSION", "zstd")
	_, err := loadConfig()
	require.ErrorContains(t, err, "JOBGATE_TEMPORAL_COMPRESSION must be auto, gzip or none")
	t.Setenv("JOBGATE_TEMPORAL_COMPRESSION", "none")
	cfg, err := loadConfig()
	require.NoError(t, err)
	require.Equal(t, "none", cfg.TemporalCompression)
}

func TestLoadConfigEmbeddedSQLiteCache(t *testing.T) {
	cfg, err := loadConfig()
	require.NoError(t, err)
	require.Equal(t, 16, cfg.EmbeddedSQLiteCache, "the default")
	t.Setenv("JOBGATE_EMBEDDED_SQLITE_CACHE_MIB", "-1")
	_, err = loadConfig()
	require.ErrorContains(t, err, "JOBGATE_EMBEDDED_SQLITE_CACHE_MIB must be 0 (for the default, 16) or more")
	t.Setenv("JOBGATE_EMBEDDED_SQLITE_CACHE_MIB", "64")
	cfg, err = loadConfig()
	require.NoError(t, err)
	require.Equal(t, 64, cfg.EmbeddedSQLiteCache)
}
