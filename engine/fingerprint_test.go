package engine

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

func TestFingerprint(t *testing.T) {
	t.Parallel()
	fp := func(kind, input, callback string) string {
		t.Helper()
		s, err := Fingerprint(job.SubmitRequest{Kind: kind, Input: json.RawMessage(input), CallbackURL: callback})
		require.NoError(t, err)
		return s
	}
	base := fp("sleep", `{"a":1,"b":[1,2]}`, "")
	require.Equal(t, base, fp("sleep", ` { "b" : [1, 2], "a": 1 } `, ""), "spacing and key order do not matter")
	require.NotEqual(t, base, fp("sleep", `{"a":2,"b":[1,2]}`, ""), "input matters")
	require.NotEqual(t, base, fp("sleep", `{"a":1,"b":[2,1]}`, ""), "array order matters")
	require.NotEqual(t, base, fp("other", `{"a":1,"b":[1,2]}`, ""), "kind matters")
	require.NotEqual(t, base, fp("sleep", `{"a":1,"b":[1,2]}`, "https://x.example/hook"), "callback matters")
	require.Equal(t, fp("sleep", `{"n":10000000000000001}`, ""), fp("sleep", `{"n":10000000000000001}`, ""))
}

func TestKeyedIDIsPerTenant(t *testing.T) {
	t.Parallel()
	secret := []byte("a deployment secret of 32 bytes!")
	require.Equal(t, KeyedID(secret, "acme", "k1"), KeyedID(secret, "acme", "k1"))
	require.NotEqual(t, KeyedID(secret, "acme", "k1"), KeyedID(secret, "umbrella", "k1"))
	require.NotEqual(t, KeyedID(secret, "a", "b\x00c"), KeyedID(secret, "a\x00b", "c"))
	require.NotEqual(t, KeyedID(secret, "acme", "k1"), KeyedID(secret, "acme", "k2"))
}

// A keyed id is a UUID (version 8) that only the deployment's secret
// computes: another secret gives another id, and it is not the name-based
// UUID (v5) that earlier versions derived from tenant and key alone.
func TestKeyedIDIsKeyedBySecret(t *testing.T) {
	t.Parallel()
	secret := []byte("a deployment secret of 32 bytes!")
	id := KeyedID(secret, "acme", "order-42")
	parsed, err := uuid.Parse(id)
	require.NoError(t, err)
	require.Equal(t, uuid.Version(8), parsed.Version())
	require.Equal(t, uuid.RFC4122, parsed.Variant())
	require.NotEqual(t, id, KeyedID([]byte("another deployment's secret, too"), "acme", "order-42"))
	legacy := uuid.NewSHA1(uuid.MustParse("6f1b5a52-3c0e-4d8a-9b6a-2f1e0c7d9a41"), []byte("4:acme:order-42")).String()
	require.NotEqual(t, legacy, id)
}

func TestFingerprintKeepsLargeNumbersApart(t *testing.T) {
	t.Parallel()
	a, err := Fingerprint(job.SubmitRequest{Kind: "k", Input: json.RawMessage(`{"account":12345678901234567}`)})
	require.NoError(t, err)
	b, err := Fingerprint(job.SubmitRequest{Kind: "k", Input: json.RawMessage(`{"account":12345678901234568}`)})
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}
