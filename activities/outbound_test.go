package activities

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsPublic(t *testing.T) {
	t.Parallel()
	for addr, public := range map[string]bool{
		"93.184.216.34": true, "2606:4700::1111": true, "8.8.8.8": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "0.0.0.0": false, "::": false,
		"100.64.0.1": false, "224.0.0.1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"64:ff9b::a00:1": false, "::a00:1": false, "::ffff:0:a00:1": false, "2002:a00:1::1": false,
		"2001:0:a00:1::1": false, "fec0::1": false, "64:ff9b:1::a00:1": false, "100::1": false,
		"2a00:1450:4001::1": true,
	} {
		require.Equal(t, public, isPublic(netip.MustParseAddr(addr)), addr)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d, ok := retryAfter("7", now)
	require.True(t, ok)
	require.Equal(t, 7*time.Second, d)
	d, ok = retryAfter(now.Add(30*time.Second).Format("Mon, 02 Jan 2006 15:04:05 GMT"), now)
	require.True(t, ok)
	require.Equal(t, 30*time.Second, d)
	d, ok = retryAfter("999999", now)
	require.True(t, ok)
	require.Equal(t, maxRetryAfter, d, "capped")
	for _, bad := range []string{"", "soon", "-5", "0"} {
		_, ok := retryAfter(bad, now)
		require.False(t, ok, bad)
	}
}
