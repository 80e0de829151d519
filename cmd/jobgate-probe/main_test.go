package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(http.StatusOK)
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"title":"Temporal unreachable"}`))
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: success
	}{
		{name: "200 is healthy", args: []string{srv.URL + "/readyz"}},
		{name: "204 is healthy", args: []string{srv.URL + "/no-content"}},
		{name: "redirect to 200 is healthy", args: []string{srv.URL + "/redirect"}},
		{name: "503 is unhealthy and says why", args: []string{srv.URL + "/unready"}, wantErr: "503 Service Unavailable: {\"title\":\"Temporal unreachable\"}"},
		{name: "unreachable is unhealthy", args: []string{"http://" + mustClosedAddr(t) + "/readyz"}, wantErr: "connect"},
		{name: "bad URL is unhealthy", args: []string{"::not a url"}, wantErr: "missing protocol scheme"},
		{name: "two arguments is a usage error", args: []string{srv.URL, srv.URL}, wantErr: "usage: jobgate-probe [URL]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(tt.args)
			if tt.wantErr == "" {
				require.NoError(t, err, "probe of %v", tt.args)
				return
			}
			require.ErrorContains(t, err, tt.wantErr, "probe of %v", tt.args)
		})
	}
}

// mustClosedAddr returns a loopback address that nothing listens on: port
// 1 is privileged and unused, where a port just freed could be taken by a
// parallel test before the probe dials it.
func mustClosedAddr(tb testing.TB) string {
	tb.Helper()
	return "127.0.0.1:1"
}
