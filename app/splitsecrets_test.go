package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
)

// Split roles in local mode (no API keys) refuse to start without shared
// webhook secrets, unless they share an explicit data directory, where
// the generated secret is kept: otherwise each process would generate its
// own and workers would sign with a secret the API never printed.
func TestSplitRolesNeedSharedWebhookSecrets(t *testing.T) {
	t.Parallel()
	unset := func(string) (string, bool) { return "", false }
	dataDirSet := func(name string) (string, bool) { return "/shared", name == "JOBGATE_DATA_DIR" }
	for _, tc := range []struct {
		name    string
		role    string
		secrets []string
		keys    []httpapi.APIKey
		lookup  func(string) (string, bool)
		refused bool
	}{
		{"worker, nothing shared", "worker", nil, nil, unset, true},
		{"api, nothing shared", "api", nil, nil, unset, true},
		{"worker, shared secrets", "worker", []string{"default:whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"}, nil, unset, false},
		{"worker, shared data directory", "worker", nil, nil, dataDirSet, false},
		{"worker with API keys", "worker", nil, []httpapi.APIKey{{Tenant: "acme"}}, unset, false},
		{"all in one", "all", nil, nil, unset, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Role: tc.role, BlobURL: "s3://bucket", WebhookSecrets: tc.secrets, apiKeys: tc.keys, DataDir: "./jobgate-data"}
			err := c.checkStorage(tc.lookup)
			if !tc.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "JOBGATE_WEBHOOK_SECRETS")
			require.ErrorContains(t, err, "JOBGATE_DATA_DIR")
		})
	}
}
