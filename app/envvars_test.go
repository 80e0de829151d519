package app

import (
	"os"
	"testing"

	"github.com/kelseyhightower/envconfig"
	"github.com/stretchr/testify/require"
)

// readEnv reads what envconfig.Process reads, the same way: defaults,
// variables with and without the prefix, set-but-empty values, lists,
// and a value that does not parse is the same error.
func TestReadEnvIsEnvconfig(t *testing.T) {
	same := func(t *testing.T) {
		t.Helper()
		var want, got Config
		wantErr := envconfig.Process("", &want)
		gotErr := readEnv(os.LookupEnv, &got)
		if wantErr != nil {
			require.EqualError(t, gotErr, wantErr.Error())
			return
		}
		require.NoError(t, gotErr)
		require.Equal(t, want, got)
	}
	t.Run("defaults", same)
	t.Run("set", func(t *testing.T) {
		t.Setenv("JOBGATE_ROLE", "api")
		t.Setenv("JOBGATE_API_KEYS", "a:00,b:11")
		t.Setenv("JOBGATE_TRUSTED_PROXIES", "")
		t.Setenv("JOBGATE_RATE_LIMIT", "2.5")
		t.Setenv("JOBGATE_MAX_WAIT", "3s")
		t.Setenv("JOBGATE_MAX_BACKLOG", "0x10")
		t.Setenv("JOBGATE_OTLP_INSECURE", "true")
		t.Setenv("JOBGATE_PUBLIC_URL", "")
		t.Setenv("LOG_LEVEL", "debug")
		t.Setenv("JOBGATE_MAX_SCHEDULES", "7")
		same(t)
	})
	t.Run("names without the prefix", func(t *testing.T) {
		t.Setenv("ROLE", "bogus")
		t.Setenv("LOG_LEVEL", "bogus")
		t.Setenv("HTTP_ADDR", ":1")
		same(t)
		cfg, err := loadConfig()
		require.NoError(t, err, "a variable without JOBGATE_ configures nothing")
		require.Equal(t, "all", cfg.Role)
		require.Equal(t, "info", cfg.LogLevel)
	})
	t.Run("bad value", func(t *testing.T) {
		t.Setenv("JOBGATE_MAX_BODY_BYTES", "lots")
		same(t)
	})
	t.Run("bad duration", func(t *testing.T) {
		t.Setenv("JOBGATE_RESULT_TTL", "1 day")
		same(t)
	})
}
