package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Failed authentication is throttled per client address (behind a trusted
// proxy, the X-Forwarded-For client): past 20 failures a client gets 429
// without its key being checked, and those answers are not logged one by
// one; another client, and its valid key, are unaffected.
func TestFailedAuthenticationIsThrottledAndQuiet(t *testing.T) {
	t.Parallel()
	var logs lockedWriter
	logs.buf = &bytes.Buffer{}
	key := "alpha-key-0123456789"
	e := mustStartEnv(t, envOptions{noWorker: true, logs: &logs, apiKeys: map[string]string{"alpha": key},
		proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	attacker := []string{"X-Forwarded-For", "203.0.113.7", "Authorization", "Bearer wrong-key-0123456789"}
	codes := map[int]int{}
	const tries = 500
	began := time.Now()
	for range tries {
		codes[e.do(http.MethodGet, "/v1/jobs", "", attacker...).StatusCode]++
	}
	refilled := int(time.Since(began).Seconds()) + 1 // one a second
	t.Logf("answers to %d bad keys in %s: %v", tries, time.Since(began), codes)
	require.LessOrEqual(t, codes[http.StatusUnauthorized], 20+refilled, "failures past the burst are throttled")
	require.Equal(t, tries, codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests])
	resp := e.do(http.MethodGet, "/v1/jobs", "", attacker...)
	if resp.StatusCode == http.StatusUnauthorized {
		// The one failure a second refilled just now; the next is held.
		resp = e.do(http.MethodGet, "/v1/jobs", "", attacker...)
	}
	requireProblem(t, resp, http.StatusTooManyRequests, "rate-limited")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))

	// Another client of the same proxy is not held back.
	other := []string{"X-Forwarded-For", "198.51.100.9", "Authorization", "Bearer " + key}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/v1/jobs", "", other...).StatusCode)

	info := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] != "DEBUG" {
			info++
		}
	}
	require.LessOrEqual(t, info, 20+refilled+3, "at most the unthrottled failures and a warning or two are logged, not %d lines", info)
}
