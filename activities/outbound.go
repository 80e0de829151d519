package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
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
	// MaxResponseBytes caps a response as a result holds it: its headers'
	// names and values and its body together; a larger one fails the
	// request. The transport reads no more header bytes than this either.
	// Zero means 1 MiB.
	MaxResponseBytes int64
	// MaxBatchResultBytes caps a batch.http job's result: all its items'
	// results together, as checkpointed. A response that would pass it is
	// recorded with its status and a batch-result-too-large error, without
	// headers or body. Zero means DefaultMaxBatchResultBytes.
	MaxBatchResultBytes int64
	// Reserved are addresses requests never connect to, whatever
	// AllowPrivate says: jobgate's own listeners and the embedded Temporal
	// server's. It is shared, so listeners started after the kinds were
	// built are refused too; nil refuses none.
	Reserved *Reserved
}

// ErrDestinationRefused is returned when a request's resolved address is
// not public and private destinations are not allowed.
var ErrDestinationRefused = errors.New("destination address refused")

// DefaultMaxBatchResultBytes is the default of JOBGATE_MAX_BATCH_RESULT_BYTES
// (Outbound.MaxBatchResultBytes): 32 MiB.
const DefaultMaxBatchResultBytes = 32 << 20

func (o Outbound) maxBatchResultBytes() int64 {
	if o.MaxBatchResultBytes <= 0 {
		return DefaultMaxBatchResultBytes
	}
	return o.MaxBatchResultBytes
}

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
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse %q", ErrDestinationRefused, address)
			}
			if o.Reserved.Refuses(ap) {
				return fmt.Errorf("%w: the destination is one of jobgate's own services, which outbound requests never reach", ErrDestinationRefused)
			}
			if o.AllowPrivate {
				return nil
			}
			if !isPublic(ap.Addr()) {
				return fmt.Errorf("%w: the destination is not a public address (set JOBGATE_ALLOW_PRIVATE_TARGETS=true to allow private ones)", ErrDestinationRefused)
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
		// Headers are read into memory before anything else can look at
		// them: bound them there.
		MaxResponseHeaderBytes: o.maxResponseBytes(),
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Reserved is a set of listening addresses that outbound requests must not
// reach: with private targets allowed, a job aimed at the embedded
// Temporal's gRPC or HTTP API, its Web UI or jobgate's own API, metrics or
// profiler would act with jobgate's authority over every tenant. Its zero
// value is empty and ready; it is safe for concurrent use.
type Reserved struct {
	mu sync.RWMutex
	// binds are the bound addresses by port.
	binds map[uint16][]netip.Addr
	// localAddrs lists this host's addresses (default: its interfaces');
	// false when they cannot be listed.
	localAddrs func() ([]netip.Addr, bool)
}

// Add reserves a listening address, host:port as a listener reports it or
// as it was configured. An empty or unspecified host (":8080",
// "0.0.0.0:8080") reserves the port on every address of this host; a name
// is resolved now. It returns an error for an address without a port or a
// name that does not resolve.
func (r *Reserved) Add(address string) error {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("reserve %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("reserve %q: the port must be a number from 1 to 65535", address)
	}
	var addrs []netip.Addr
	switch ip, err := netip.ParseAddr(host); {
	case host == "":
		addrs = []netip.Addr{netip.IPv6Unspecified()}
	case err == nil:
		addrs = []netip.Addr{ip.Unmap()}
	default:
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
		if err != nil {
			return fmt.Errorf("reserve %q: %w", address, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, ip.Unmap())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.binds == nil {
		r.binds = map[uint16][]netip.Addr{}
	}
	for _, a := range addrs {
		if !slices.Contains(r.binds[uint16(port)], a) {
			r.binds[uint16(port)] = append(r.binds[uint16(port)], a)
		}
	}
	return nil
}

// Addresses lists the reserved addresses, for telling an operator.
func (r *Reserved) Addresses() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for port, addrs := range r.binds {
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a, port).String())
		}
	}
	slices.Sort(out)
	return out
}

// Refuses reports whether connecting to ap could reach a reserved
// listener. A listener bound to an unspecified address is reached through
// every address of this host, one bound to loopback through every loopback
// address, and connecting to an unspecified address reaches this host.
func (r *Reserved) Refuses(ap netip.AddrPort) bool {
	if r == nil {
		return false
	}
	r.mu.RLock()
	binds := r.binds[ap.Port()]
	local := r.localAddrs
	r.mu.RUnlock()
	if len(binds) == 0 {
		return false
	}
	dst := ap.Addr().Unmap().WithZone("")
	if dst.IsUnspecified() {
		return true
	}
	for _, b := range binds {
		switch {
		case b == dst:
			return true
		case b.IsLoopback() && dst.IsLoopback():
			return true
		case b.IsUnspecified():
			if dst.IsLoopback() {
				return true
			}
			if local == nil {
				local = interfaceAddrs
			}
			// Without the list, the port is refused everywhere.
			if addrs, ok := local(); !ok || slices.Contains(addrs, dst) {
				return true
			}
		}
	}
	return false
}

// interfaceAddrs lists the addresses of this host's network interfaces.
func interfaceAddrs() ([]netip.Addr, bool) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, false
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap().WithZone(""))
		}
	}
	return out, true
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

// describe is a failed request's error as clients and logs see it: why it
// failed, without the resolved address, the resolver's, or the URL (whose
// query may hold credentials). A refusal still matches
// ErrDestinationRefused.
func describe(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == ErrDestinationRefused {
			return e
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return fmt.Errorf("cannot resolve %s: no such host", dnsErr.Name)
		case dnsErr.IsTimeout:
			return fmt.Errorf("cannot resolve %s: the lookup timed out", dnsErr.Name)
		}
		return fmt.Errorf("cannot resolve %s", dnsErr.Name)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		var errno syscall.Errno
		switch {
		case errors.As(err, &errno):
			return fmt.Errorf("%s: %s", opErr.Op, errno.Error())
		case opErr.Timeout():
			return fmt.Errorf("%s: timed out", opErr.Op)
		}
		return fmt.Errorf("%s failed", opErr.Op)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// logURL is u for messages: scheme, host and path, with no credentials,
// query or fragment (a query often carries a token).
func logURL(u *url.URL) string {
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := out.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?…"
	}
	return s
}

// contextDone reports whether ctx ended, for telling a canceled request
// from a failed one.
func contextDone(ctx context.Context) bool { return ctx.Err() != nil }
