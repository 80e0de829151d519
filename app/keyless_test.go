package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/httpapi"
)

// Without API keys the API listens on loopback unless JOBGATE_HTTP_ADDR
// was set; with keys, or in role worker, the address stays as it is.
func TestKeylessAPIBindsLoopback(t *testing.T) {
	t.Parallel()
	unset := func(string) (string, bool) { return "", false }
	set := func(name string) (string, bool) { return ":8080", name == "JOBGATE_HTTP_ADDR" }
	for _, tc := range []struct {
		name   string
		role   string
		addr   string
		keys   []httpapi.APIKey
		lookup func(string) (string, bool)
		want   string
	}{
		{"default", "all", ":8080", nil, unset, "127.0.0.1:8080"},
		{"role api", "api", ":8080", nil, unset, "127.0.0.1:8080"},
		{"explicit", "all", ":8080", nil, set, ":8080"},
		{"with keys", "all", ":8080", []httpapi.APIKey{{Tenant: "acme"}}, unset, ":8080"},
		{"worker probes", "worker", ":8080", nil, unset, ":8080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Role: tc.role, HTTPAddr: tc.addr, apiKeys: tc.keys}
			require.NoError(t, c.keylessLoopback(tc.lookup))
			require.Equal(t, tc.want, c.HTTPAddr)
		})
	}
}
