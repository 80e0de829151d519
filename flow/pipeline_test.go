package flow

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveRefs(t *testing.T) {
	t.Parallel()
	results := map[string]json.RawMessage{
		"a": json.RawMessage(`{"body":{"token":"t-1","items":[10,20]},"big":12345678901234567}`),
	}
	for _, tc := range []struct {
		name, input, want, err string
	}{
		{"whole result", `{"x":{"$result":"a"}}`, `{"x":{"body":{"token":"t-1","items":[10,20]},"big":12345678901234567}}`, ""},
		{"pointer", `{"x":{"$result":"a","pointer":"/body/token"}}`, `{"x":"t-1"}`, ""},
		{"array index, nested in arrays", `{"x":[{"$result":"a","pointer":"/body/items/1"}]}`, `{"x":[20]}`, ""},
		{"numbers stay exact", `{"x":{"$result":"a","pointer":"/big"}}`, `{"x":12345678901234567}`, ""},
		{"no references", `{"x":1}`, `{"x":1}`, ""},
		{"missing path", `{"x":{"$result":"a","pointer":"/nope"}}`, "", `nothing at /nope`},
		{"unknown step", `{"x":{"$result":"b"}}`, "", `step "b" has no JSON result`},
		{"extra member", `{"x":{"$result":"a","also":1}}`, "", `not "also"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolveRefs(json.RawMessage(tc.input), results)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestFindCycle(t *testing.T) {
	t.Parallel()
	steps := func(after map[string][]string, order ...string) ([]PipelineStep, map[string]int) {
		var out []PipelineStep
		index := map[string]int{}
		for i, id := range order {
			out = append(out, PipelineStep{ID: id, After: after[id]})
			index[id] = i
		}
		return out, index
	}
	s, idx := steps(map[string][]string{"c": {"a", "b"}, "b": {"a"}}, "a", "b", "c")
	require.Nil(t, findCycle(s, idx), "a diamond is no cycle")
	s, idx = steps(map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}}, "a", "b", "c")
	require.Equal(t, []string{"a", "c", "b", "a"}, findCycle(s, idx))
	s, idx = steps(map[string][]string{"a": {"b"}, "b": {"a"}, "d": {"a"}}, "d", "a", "b")
	require.NotNil(t, findCycle(s, idx))
	require.Equal(t, map[string]bool{"a": true, "b": true}, ancestors(s, idx, "d"))
}
