package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// APIKey binds the SHA-256 hash of an API key to its tenant. jobgate never
// holds keys in clear.
type APIKey struct {
	Tenant string
	Hash   [sha256.Size]byte
}

// ParseAPIKeys reads JOBGATE_API_KEYS entries, each "tenant:sha256-hex".
// Errors name the entry's position, never its content.
func ParseAPIKeys(entries []string) ([]APIKey, error) {
	var keys []APIKey
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		tenant, hexHash, ok := strings.Cut(e, ":")
		if !ok || !validTenant(tenant) {
			return nil, fmt.Errorf("API key entry %d: want tenant:sha256-hex with a tenant of letters, digits, - _ . (the hash of a key is: printf %%s KEY | sha256sum)", i+1)
		}
		raw, err := hex.DecodeString(hexHash)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("API key entry %d (tenant %s): the hash must be 64 hex digits of SHA-256", i+1, tenant)
		}
		k := APIKey{Tenant: tenant}
		copy(k.Hash[:], raw)
		keys = append(keys, k)
	}
	return keys, nil
}

func validTenant(t string) bool { return plainToken(t, 64) }

// plainToken reports whether s is 1 to maxLen characters of A-Z a-z 0-9
// - _ . (tenant names, request ids).
func plainToken(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

type tenantKey struct{}

// authenticate resolves the request's tenant from its bearer key, or the
// local tenant when no keys are configured. It compares the key's hash with
// every configured hash in constant time, so timing tells nothing about
// which keys exist.
func (s *Server) authenticate(r *http.Request) (string, error) {
	if len(s.cfg.APIKeys) == 0 {
		return s.cfg.Tenant, nil
	}
	unauthorized := func(detail string) error {
		p := problem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
		p.authenticate = true
		return p
	}
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", unauthorized("Send your API key as Authorization: Bearer <key>.")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	tenant, found := "", 0
	for _, k := range s.cfg.APIKeys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) == 1 {
			tenant, found = k.Tenant, 1
		}
	}
	if found == 0 {
		return "", unauthorized("The API key is not valid.")
	}
	return tenant, nil
}

// authenticateThrottled is authenticate for a client that has not failed
// too often: a client over its failures gets 429 without its key being
// checked, logged at debug (with one warning per address now and then).
func (s *Server) authenticateThrottled(w *recorder, r *http.Request) (string, error) {
	if len(s.cfg.APIKeys) == 0 {
		return s.authenticate(r)
	}
	client, now := s.clientAddr(r), s.cfg.Now()
	if throttled, log := s.authFailures.throttled(client, now); throttled {
		w.quiet = true
		if log && s.log != nil {
			s.log.WarnContext(r.Context(), "too many failed authentications from one address; answering 429 without checking keys",
				"client", client.String(), "allowed", fmt.Sprintf("%d at once, then %d/s", authFailureBurst, authFailureRate))
		}
		p := problem(http.StatusTooManyRequests, "rate-limited", "Too many failed authentications",
			fmt.Sprintf("Requests from your address failed authentication more than %d times; retry after the indicated delay with a valid key.", authFailureBurst))
		p.retryAfter = 1
		return "", p
	}
	tenant, err := s.authenticate(r)
	if err != nil {
		s.authFailures.failed(client, now)
	}
	return tenant, err
}

// tenant returns the tenant a request acts for, set by ServeHTTP.
func (s *Server) tenant(r *http.Request) string {
	if t, ok := r.Context().Value(tenantKey{}).(string); ok {
		return t
	}
	return s.cfg.Tenant
}

func withTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}
