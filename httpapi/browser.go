package httpapi

import (
	"cmp"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// What a browser must not do with jobgate's answers and requests: render
// them as a page, sniff another type into them, frame them, or (without
// API keys, where nothing but the network stands between a web page and
// the API) reach the API under another site's name.

// contentSecurityPolicy forbids an answer every active content: the API
// serves data, never a page, so even a result a browser renders (HTML or
// SVG a job produced) runs no script, loads nothing and cannot be framed.
const contentSecurityPolicy = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"

// secureHeaders sets the headers every answer carries. Their keys are in
// canonical form and their values the same for every answer, so they are
// assigned, not Set: no canonicalising and no new slice per answer (a
// handler that Sets or Adds one replaces or copies the shared value).
func secureHeaders(h http.Header) {
	h["X-Content-Type-Options"] = nosniff
	h["Content-Security-Policy"] = cspValue
	h["Referrer-Policy"] = noReferrer
}

var (
	nosniff    = []string{"nosniff"}
	cspValue   = []string{contentSecurityPolicy}
	noReferrer = []string{"no-referrer"}
)

// checkHost refuses, in local mode (no API keys), a request whose Host is
// a name other than a loopback one or the public URL's: a page on another
// site whose name the attacker points at 127.0.0.1 (DNS rebinding) would
// otherwise read and submit jobs as the only tenant. IP literals are
// allowed, since rebinding needs a name. With API keys the key protects
// the API and every Host is accepted; the probes, which hold no tenant's
// data, accept every Host too (a load balancer may use any name).
func (s *Server) checkHost(r *http.Request) error {
	if !s.checkHosts || s.allowedHost(r.Host) {
		return nil
	}
	switch r.URL.Path {
	case "/healthz", "/readyz":
		return nil
	}
	return problem(http.StatusForbidden, "host-not-allowed", "Host not allowed",
		fmt.Sprintf("Without API keys this API answers only requests addressed to localhost, an IP address or the host of JOBGATE_PUBLIC_URL, not %q; configure JOBGATE_API_KEYS to serve other names.", trimForDetail(r.Host)))
}

// allowedHost reports whether a Host header names this API in local mode.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if s.cfg.PublicURL != "" {
		if u, err := url.Parse(s.cfg.PublicURL); err == nil && strings.EqualFold(strings.TrimSuffix(u.Hostname(), "."), host) {
			return true
		}
	}
	return false
}

// trimForDetail shortens a client-supplied value quoted in a problem.
func trimForDetail(v string) string {
	if len(v) > 100 {
		return v[:100] + "…"
	}
	return v
}

// isJSON reports whether a media type is JSON (application/json or
// something+json).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// downloadName names the download of a result that has no file name: the
// job id with the content type's usual extension, if it has one.
func downloadName(id, contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return id
	}
	exts, _ := mime.ExtensionsByType(mt)
	if len(exts) == 0 {
		return id
	}
	// The shortest, then the first in order: ".htm" over ".ehtml".
	slices.SortFunc(exts, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	return id + exts[0]
}
