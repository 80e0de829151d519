package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed authentication is throttled per client address: a client may fail
// authFailureBurst times at once and authFailureRate times a second after
// that; beyond, its requests are answered 429 without their key being
// checked, and are not logged one by one.
const (
	authFailureRate  = 1
	authFailureBurst = 20
	// authFailureClients bounds the addresses tracked; past it the table
	// starts afresh.
	authFailureClients = 10000
	// authThrottleLogEvery spaces the log lines that say an address is
	// being throttled.
	authThrottleLogEvery = 10 * time.Second
)

// authFailures counts failed authentications per client address.
type authFailures struct {
	mu      sync.Mutex
	clients map[netip.Addr]*authFailure
}

type authFailure struct {
	bucket *rate.Limiter
	// logged is when a throttled answer to this client was last logged.
	logged time.Time
}

// throttled reports whether client has used up its failures; log is true
// at most once per authThrottleLogEvery per client, for a log line.
func (a *authFailures) throttled(client netip.Addr, now time.Time) (throttled, log bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.clients[client]
	if f == nil || f.bucket.TokensAt(now) >= 1 {
		return false, false
	}
	if now.Sub(f.logged) >= authThrottleLogEvery {
		f.logged = now
		return true, true
	}
	return true, false
}

// failed counts a failed authentication of client.
func (a *authFailures) failed(client netip.Addr, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients == nil || len(a.clients) >= authFailureClients {
		a.clients = map[netip.Addr]*authFailure{}
	}
	f := a.clients[client]
	if f == nil {
		f = &authFailure{bucket: rate.NewLimiter(authFailureRate, authFailureBurst)}
		a.clients[client] = f
	}
	f.bucket.AllowN(now, 1)
}

// clientAddr is the address of the client a request comes from: the peer,
// or, when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not one.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !s.trustedProxy(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		if hop = hop.Unmap(); !s.trustedProxy(hop) {
			return hop
		}
	}
	return addr
}

func (s *Server) trustedProxy(addr netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
