// Package webhook signs jobgate's webhooks per the Standard Webhooks
// specification (https://www.standardwebhooks.com): every message carries
// webhook-id (the same on every retry of one message), webhook-timestamp
// (Unix seconds of the attempt) and webhook-signature, "v1," followed by
// the base64 HMAC-SHA256 of "id.timestamp.body" under the tenant's secret.
// Secrets are "whsec_" followed by base64 of 24 to 64 random bytes.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobgate/jobgate/internal/secretfile"
)

// Header names of a signed message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// key returns the HMAC key of a whsec_ secret. Errors say what is wrong
// with the secret, never its value.
func key(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("a signing secret starts with whsec_")
	}
	k, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, errors.New("a signing secret is whsec_ followed by standard base64")
	}
	if len(k) < 24 || len(k) > 64 {
		return nil, fmt.Errorf("a signing secret holds 24 to 64 bytes, not %d", len(k))
	}
	return k, nil
}

// Sign returns the webhook-signature value of a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body". Errors: a malformed secret.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// NewSecret returns a new random signing secret (32 bytes).
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// ParseSecrets parses "tenant:whsec_…" entries into secrets by tenant. It
// names the entry that is wrong, never a secret's value.
func ParseSecrets(entries []string) (map[string]string, error) {
	out := map[string]string{}
	for i, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		tenant, secret, ok := strings.Cut(e, ":")
		if !ok || tenant == "" {
			return nil, fmt.Errorf("entry %d is not tenant:whsec_…", i+1)
		}
		if _, err := key(secret); err != nil {
			return nil, fmt.Errorf("entry %d (tenant %q): %w", i+1, tenant, err)
		}
		if _, dup := out[tenant]; dup {
			return nil, fmt.Errorf("entry %d: tenant %q has a secret already", i+1, tenant)
		}
		out[tenant] = secret
	}
	return out, nil
}

// LoadOrCreateSecret returns the secret kept in the file at path, creating
// the file (mode 0600) with a new secret if there is none. Processes that
// share the file share the secret.
func LoadOrCreateSecret(path string) (string, error) {
	secret, err := secretfile.LoadOrCreate(path, NewSecret, func(secret string) error {
		if _, err := key(secret); err != nil {
			return fmt.Errorf("webhook secret in %s: %w; delete the file to get a new one", path, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return secret, nil
}
