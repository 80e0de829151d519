package httpapi

import (
	"strconv"
	"strings"
	"time"
)

// Preferences are the RFC 7240 preferences jobgate honours.
type Preferences struct {
	// Wait is how long the client is willing to wait for an answer
	// (wait=N); zero when not asked.
	Wait time.Duration
	// RespondAsync asks for the 202 without waiting (respond-async).
	RespondAsync bool
}

// ParsePrefer reads Prefer header values. Per RFC 7240 preferences that are
// unknown or malformed are ignored, never an error; the first occurrence of
// a preference wins.
func ParsePrefer(values []string) Preferences {
	var p Preferences
	seenWait := false
	for _, v := range values {
		for _, pref := range splitOutsideQuotes(v, ',') {
			// Parameters after ';' are not used by either preference.
			token := strings.TrimSpace(splitOutsideQuotes(pref, ';')[0])
			name, value, hasValue := strings.Cut(token, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch {
			case name == "respond-async" && !hasValue:
				p.RespondAsync = true
			case name == "wait" && hasValue && !seenWait:
				secs, err := strconv.ParseUint(value, 10, 32)
				if err != nil {
					continue
				}
				seenWait = true
				p.Wait = time.Duration(secs) * time.Second
			}
		}
	}
	return p
}

// splitOutsideQuotes splits s at sep, except inside double quotes.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
