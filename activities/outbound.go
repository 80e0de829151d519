package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Outbound configures every HTTP request jobgate's work sends to other
// services: http.request, batch.http's requests and webhooks.
type Outbound struct {
	// AllowPrivate lets requests reach loopback, private, link-local and
	// other non-public addresses. Off by default, so clients cannot use
	// jobgate to reach inside its network.
	AllowPrivate bool
	// MaxResponseBytes caps the body read from a response; a larger body
	// fails the request. Zero means 1 MiB.
	MaxResponseBytes int64
}

// ErrDestinationRefused is returned when a request's resolved address is
// not public and private destinations are not allowed.
var ErrDestinationRefused = errors.New("destination address refused")

func (o Outbound) maxResponseBytes() int64 {
	if o.MaxResponseBytes <= 0 {
		return 1 << 20
	}
	return o.MaxResponseBytes
}

// client returns an HTTP client whose dialer checks every address it
// connects to, after DNS resolution, so a name that resolves (or
// re-resolves) to a private address is refused too. It never uses a proxy
// from the environment, which would bypass the check, and does not follow
// redirects: the response is the job's result.
func (o Outbound) client() *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			if o.AllowPrivate {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse %q", ErrDestinationRefused, address)
			}
			if !isPublic(ap.Addr()) {
				return fmt.Errorf("%w: %s is not a public address (set JOBGATE_ALLOW_PRIVATE_TARGETS=true to allow it)", ErrDestinationRefused, ap.Addr())
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// isPublic reports whether addr is a globally routable unicast address.
func isPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsGlobalUnicast() || addr.IsPrivate() || addr.IsLoopback() ||
		addr.IsLinkLocalUnicast() || addr.IsUnspecified() || addr.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// nonPublic lists special-purpose ranges that IsGlobalUnicast and IsPrivate
// do not exclude (RFC 6890 and successors).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 can reach IPv4 private space
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT)
	netip.MustParsePrefix("2002::/16"),       // 6to4 embeds an IPv4 address
	netip.MustParsePrefix("2001::/32"),       // Teredo embeds one too
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),
}

// contextDone reports whether ctx ended, for telling a canceled request
// from a failed one.
func contextDone(ctx context.Context) bool { return ctx.Err() != nil }
