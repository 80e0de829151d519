package app

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Unset, JOBGATE_METRICS_ADDR is loopback at the HTTP port plus 1000, so
// an API and a worker with their own HTTP ports do not collide; off or
// empty serves no metrics; a set address is taken as it is.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		set         bool
		httpAddr    string
		want        string
		wantErr     string
	}{
		{name: "default beside the API", httpAddr: ":8080", want: "127.0.0.1:9080"},
		{name: "default beside a worker", httpAddr: ":8081", want: "127.0.0.1:9081"},
		{name: "loopback API", httpAddr: "127.0.0.1:8080", want: "127.0.0.1:9080"},
		{name: "all interfaces stay loopback", httpAddr: "0.0.0.0:8080", want: "127.0.0.1:9080"},
		{name: "a free HTTP port gets a free one", httpAddr: "127.0.0.1:0", want: "127.0.0.1:0"},
		{name: "set", value: "10.0.0.5:9100", set: true, httpAddr: ":8080", want: "10.0.0.5:9100"},
		{name: "off", value: "off", set: true, httpAddr: ":8080", want: ""},
		{name: "empty is off", value: "", set: true, httpAddr: ":8080", want: ""},
		{name: "no room above the port", httpAddr: ":65000", wantErr: "set JOBGATE_METRICS_ADDR"},
		{name: "named port", httpAddr: ":http", wantErr: "set JOBGATE_METRICS_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metricsAddr(tc.value, tc.set, tc.httpAddr)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
