package activities

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"syscall"
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

// A reserved listener is refused through every address that reaches it:
// its own, loopback for a loopback bind, this host's interfaces for an
// unspecified bind, and the unspecified address; other ports and other
// hosts' addresses are not.
func TestReservedRefuses(t *testing.T) {
	t.Parallel()
	r := &Reserved{localAddrs: func() ([]netip.Addr, bool) {
		return []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("2001:db8::5")}, true
	}}
	for _, a := range []string{"127.0.0.1:7233", ":8080", "10.0.0.9:9000", "[::]:6060"} {
		require.NoError(t, r.Add(a))
	}
	require.Error(t, r.Add("127.0.0.1"), "no port")
	require.Error(t, r.Add("127.0.0.1:0"), "port 0 is not a listener")
	for addr, refused := range map[string]bool{
		"127.0.0.1:7233": true, "127.0.0.2:7233": true, "[::1]:7233": true, "[::ffff:127.0.0.1]:7233": true,
		"0.0.0.0:7233": true, "10.0.0.5:7233": false, "127.0.0.1:7234": false,
		"127.0.0.1:8080": true, "10.0.0.5:8080": true, "[2001:db8::5]:8080": true, "[::]:8080": true,
		"10.0.0.6:8080": false, "93.184.216.34:8080": false,
		"10.0.0.9:9000": true, "10.0.0.5:9000": false, "127.0.0.1:9000": false,
		"[fe80::1%eth0]:6060": false, "10.0.0.5:6060": true,
	} {
		require.Equal(t, refused, r.Refuses(netip.MustParseAddrPort(addr)), addr)
	}
	require.Contains(t, r.Addresses(), "127.0.0.1:7233")
	require.Contains(t, r.Addresses(), "[::]:8080")

	var none *Reserved
	require.False(t, none.Refuses(netip.MustParseAddrPort("127.0.0.1:7233")))

	blind := &Reserved{localAddrs: func() ([]netip.Addr, bool) { return nil, false }}
	require.NoError(t, blind.Add(":8080"))
	require.True(t, blind.Refuses(netip.MustParseAddrPort("10.0.0.6:8080")), "without the host's addresses, the port is refused everywhere")
}

// A failed request's error names neither the resolved address nor the
// resolver nor the URL's query; a refusal still matches
// ErrDestinationRefused.
func TestDescribeAndLogURLRevealNothing(t *testing.T) {
	t.Parallel()
	refusal := fmt.Errorf("%w: the destination is not a public address", ErrDestinationRefused)
	refused := &url.Error{Op: "Get", URL: "http://internal.example/x?token=s3cret", Err: &net.OpError{Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 80}, Err: refusal}}
	for _, tc := range []struct {
		err     error
		want    string
		refused bool
	}{
		{refused, "destination address refused: the destination is not a public address", true},
		{&url.Error{Op: "Get", URL: "http://nope.example/?token=s3cret", Err: &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "nope.example", Server: "10.255.255.53:53", IsNotFound: true}}},
			"cannot resolve nope.example: no such host", false},
		{&url.Error{Op: "Get", URL: "http://a.example/?token=s3cret", Err: &net.OpError{Op: "dial", Net: "tcp",
			Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 80}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			"dial: connection refused", false},
	} {
		got := describe(tc.err)
		require.Equal(t, tc.want, got.Error())
		require.Equal(t, tc.refused, errors.Is(got, ErrDestinationRefused), tc.want)
		for _, secret := range []string{"10.0.0.5", "10.255.255.53", "s3cret"} {
			require.NotContains(t, got.Error(), secret)
		}
	}
	u, err := url.Parse("https://user:pw@api.example/v1/x?token=s3cret#frag")
	require.NoError(t, err)
	require.Equal(t, "https://api.example/v1/x?…", logURL(u))
	u, _ = url.Parse("https://api.example/v1/x")
	require.Equal(t, "https://api.example/v1/x", logURL(u))
}
