package engine

import (
	"encoding/json"
	"testing"

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
	require.Equal(t, KeyedID("acme", "k1"), KeyedID("acme", "k1"))
	require.NotEqual(t, KeyedID("acme", "k1"), KeyedID("umbrella", "k1"))
	require.NotEqual(t, KeyedID("a", "b\x00c"), KeyedID("a\x00b", "c"))
}

func TestFingerprintKeepsLargeNumbersApart(t *testing.T) {
	t.Parallel()
	a, err := Fingerprint(job.SubmitRequest{Kind: "k", Input: json.RawMessage(`{"account":12345678901234567}`)})
	require.NoError(t, err)
	b, err := Fingerprint(job.SubmitRequest{Kind: "k", Input: json.RawMessage(`{"account":12345678901234568}`)})
	require.NoError(t, err)
	require.NotEqual(t, a, b)
}
