package httpapi

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseIdempotencyKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"uuid", "8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{"every allowed character", "AZaz09-_.~:", "AZaz09-_.~:", true},
		{"quoted structured-field string", `"order-1"`, "order-1", true},
		{"one character", "x", "x", true},
		{"255 characters", strings.Repeat("k", 255), strings.Repeat("k", 255), true},
		{"empty", "", "", false},
		{"empty quoted", `""`, "", false},
		{"256 characters", strings.Repeat("k", 256), "", false},
		{"space", "a b", "", false},
		{"slash", "a/b", "", false},
		{"non-ASCII", "clé", "", false},
		{"lone quote", `"abc`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseIdempotencyKey(tc.in)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
