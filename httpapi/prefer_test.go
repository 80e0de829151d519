package httpapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParsePrefer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		values []string
		want   Preferences
	}{
		{"none", nil, Preferences{}},
		{"wait", []string{"wait=5"}, Preferences{Wait: 5 * time.Second}},
		{"quoted wait", []string{`wait="7"`}, Preferences{Wait: 7 * time.Second}},
		{"case and spaces", []string{" WAIT = 3 "}, Preferences{Wait: 3 * time.Second}},
		{"respond-async", []string{"respond-async"}, Preferences{RespondAsync: true}},
		{"both in one header", []string{"respond-async, wait=10"}, Preferences{Wait: 10 * time.Second, RespondAsync: true}},
		{"two headers", []string{"return=minimal", "wait=2"}, Preferences{Wait: 2 * time.Second}},
		{"first wait wins", []string{"wait=2, wait=9"}, Preferences{Wait: 2 * time.Second}},
		{"parameters ignored", []string{"wait=4;foo=bar"}, Preferences{Wait: 4 * time.Second}},
		{"negative ignored", []string{"wait=-1"}, Preferences{}},
		{"garbage ignored", []string{"wait=soon, ,,=,respond-async=yes"}, Preferences{}},
		{"comma in quotes", []string{`foo="a,b", wait=1`}, Preferences{Wait: time.Second}},
		{"huge ignored", []string{"wait=99999999999"}, Preferences{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, ParsePrefer(tc.values))
		})
	}
}
