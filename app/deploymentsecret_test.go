package app

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// An API that would generate its own deployment secret where other API
// instances cannot read it refuses to start: with an external Temporal,
// it needs JOBGATE_DEPLOYMENT_SECRET or a data directory that instances
// share. A secret shorter than 32 characters is refused everywhere.
func TestAPIsNeedASharedDeploymentSecret(t *testing.T) {
	t.Parallel()
	unset := func(string) (string, bool) { return "", false }
	dataDirSet := func(name string) (string, bool) { return "/shared", name == "JOBGATE_DATA_DIR" }
	secret := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name     string
		role     string
		temporal string
		secret   string
		lookup   func(string) (string, bool)
		refused  string
	}{
		{"api, nothing shared", "api", "temporal:7233", "", unset, "JOBGATE_DEPLOYMENT_SECRET"},
		{"all with an external Temporal", "all", "temporal:7233", "", unset, "JOBGATE_DEPLOYMENT_SECRET"},
		{"api with a secret", "api", "temporal:7233", secret, unset, ""},
		{"api with a shared data directory", "api", "temporal:7233", "", dataDirSet, ""},
		{"worker needs none", "worker", "temporal:7233", "", unset, ""},
		{"all in one", "all", "", "", unset, ""},
		{"too short", "all", "", "short-secret", unset, "at least 32 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Config{Role: tc.role, TemporalAddress: tc.temporal, DeploymentSecret: tc.secret, DataDir: "./jobgate-data"}
			err := c.checkDeploymentSecret(tc.lookup)
			if tc.refused == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.refused)
			require.ErrorContains(t, err, "JOBGATE_DEPLOYMENT_SECRET")
			require.NotContains(t, err.Error(), "short-secret", "the error never shows the secret")
		})
	}
}

// The generated deployment secret is written once (mode 0600) and read
// back by every later start; a configured one wins over the file.
func TestDeploymentSecretIsKeptInTheDataDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{Role: "all", DataDir: dir}
	first, err := loadDeploymentSecret(cfg, io.Discard)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(first), minDeploymentSecret)
	info, err := os.Stat(filepath.Join(dir, "deployment-secret"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	again, err := loadDeploymentSecret(cfg, io.Discard)
	require.NoError(t, err)
	require.Equal(t, first, again, "a restart keeps the secret")

	other, err := loadDeploymentSecret(Config{Role: "all", DataDir: t.TempDir()}, io.Discard)
	require.NoError(t, err)
	require.NotEqual(t, first, other, "each data directory generates its own")

	cfg.DeploymentSecret = strings.Repeat("c", 40)
	configured, err := loadDeploymentSecret(cfg, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []byte(cfg.DeploymentSecret), configured)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "deployment-secret"), []byte("cut\n"), 0o600))
	_, err = loadDeploymentSecret(Config{Role: "all", DataDir: dir}, io.Discard)
	require.ErrorContains(t, err, "fewer than 32")
}
