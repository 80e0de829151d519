package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// maxKeyLength is the longest Idempotency-Key accepted.
const maxKeyLength = 255

// ParseIdempotencyKey validates an Idempotency-Key header value: 1 to 255
// characters of A–Z a–z 0–9 - _ . ~ :, bare or as a quoted structured-field
// string (the IETF draft's form).
func ParseIdempotencyKey(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return "", errors.New("the Idempotency-Key is empty")
	}
	if len(v) > maxKeyLength {
		return "", errors.New("the Idempotency-Key is longer than 255 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.~:", r)) {
			return "", errors.New("the Idempotency-Key may hold only A-Z a-z 0-9 - _ . ~ :, found " + strconv.QuoteRune(r))
		}
	}
	return v, nil
}

// idempotencyKey reads the request's Idempotency-Key ("" when absent and
// not required).
func idempotencyKey(r *http.Request, required bool) (string, error) {
	values := r.Header.Values("Idempotency-Key")
	switch {
	case len(values) == 0 && required:
		return "", badRequest("idempotency-key-missing", "Idempotency-Key required", "This deployment requires an Idempotency-Key header on every submission.")
	case len(values) == 0:
		return "", nil
	case len(values) > 1:
		return "", badRequest("idempotency-key-invalid", "Invalid Idempotency-Key", "Send exactly one Idempotency-Key header.")
	}
	key, err := ParseIdempotencyKey(values[0])
	if err != nil {
		return "", badRequest("idempotency-key-invalid", "Invalid Idempotency-Key", err.Error()+".")
	}
	return key, nil
}
