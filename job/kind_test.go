package job_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

type addInput struct {
	A *int `json:"a"`
	B int  `json:"b"`
}

func addKind() job.Kind {
	return job.Define(job.KindSpec[addInput]{
		Name: "add",
		Validate: func(in addInput) []job.FieldError {
			if in.A == nil {
				return []job.FieldError{{Field: "/input/a", Message: "is required"}}
			}
			return nil
		},
		Run: func(ctx context.Context, in addInput, report job.Reporter) (any, error) {
			report(job.Progress{Current: 1, Total: 1})
			return *in.A + in.B, nil
		},
	})
}

func TestRegistryCheck(t *testing.T) {
	t.Parallel()
	reg, err := job.NewRegistry(addKind())
	require.NoError(t, err)

	_, err = reg.Check("add", json.RawMessage(`{"a":1,"b":2}`))
	require.NoError(t, err)

	var unknown *job.UnknownKindError
	_, err = reg.Check("sub", nil)
	require.True(t, errors.As(err, &unknown))
	require.Equal(t, []string{"add"}, unknown.Known)

	for input, field := range map[string]string{
		`{"b":2}`:         "/input/a",
		`{"a":"x"}`:       "/input/a",
		`{"a":1,"c":3}`:   "/input/c",
		`[1]`:             "/input",
		`{"a":1} {"a":2}`: "/input",
	} {
		var invalid *job.ValidationError
		_, err := reg.Check("add", json.RawMessage(input))
		require.True(t, errors.As(err, &invalid), input)
		require.Equal(t, field, invalid.Fields[0].Field, input)
	}
}

func TestRegistryRejectsDuplicatesAndHalfKinds(t *testing.T) {
	t.Parallel()
	_, err := job.NewRegistry(addKind(), addKind())
	require.ErrorContains(t, err, "twice")
	_, err = job.NewRegistry(job.Kind{Name: "raw"})
	require.ErrorContains(t, err, "job.Define")
}

func TestProgressPercent(t *testing.T) {
	t.Parallel()
	require.Equal(t, 45, job.Progress{Current: 45, Total: 100}.Percent())
	require.Equal(t, -1, job.Progress{Current: 3}.Percent(), "unknown total")
	require.Equal(t, 100, job.Progress{Current: 7, Total: 5}.Percent(), "capped")
}

func schemaKind(schema string) job.Kind {
	return job.Define(job.KindSpec[map[string]any]{
		Name:        "schematic",
		InputSchema: schema,
		Validate: func(in map[string]any) []job.FieldError {
			if in["n"] == 13.0 {
				return []job.FieldError{{Field: "/input/n", Message: "is unlucky"}}
			}
			return nil
		},
		Run: func(context.Context, map[string]any, job.Reporter) (any, error) { return nil, nil },
	})
}

// Inputs are held to the kind's JSON Schema before its own Validate, and
// every schema error points at the value it is about.
func TestRegistryCheckAppliesTheSchema(t *testing.T) {
	t.Parallel()
	reg, err := job.NewRegistry(schemaKind(`{"type":"object","additionalProperties":false,"required":["n"],"properties":{` +
		`"n":{"type":"integer","minimum":1},"tags":{"type":"array","items":{"type":"string"}},"mode":{"enum":["a","b"]}}}`))
	require.NoError(t, err)
	cases := []struct {
		name, input string
		fields      []string
	}{
		{"valid", `{"n":2,"tags":["x"],"mode":"a"}`, nil},
		{"missing required", `{}`, []string{"/input/n"}},
		{"null is an empty object", `null`, []string{"/input/n"}},
		{"wrong type", `{"n":"two"}`, []string{"/input/n"}},
		{"below minimum", `{"n":0}`, []string{"/input/n"}},
		{"unknown fields", `{"n":1,"x":1,"y/z":2}`, []string{"/input/x", "/input/y~1z"}},
		{"nested item", `{"n":1,"tags":["a",2]}`, []string{"/input/tags/1"}},
		{"not in enum", `{"n":1,"mode":"c"}`, []string{"/input/mode"}},
		{"kind's own rule after the schema", `{"n":13}`, []string{"/input/n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reg.Check("schematic", json.RawMessage(tc.input))
			if tc.fields == nil {
				require.NoError(t, err)
				return
			}
			var invalid *job.ValidationError
			require.True(t, errors.As(err, &invalid), "%v", err)
			var fields []string
			for _, f := range invalid.Fields {
				fields = append(fields, f.Field)
				require.NotEmpty(t, f.Message)
			}
			require.Equal(t, tc.fields, fields)
		})
	}
}

// A kind whose schema is not a valid, self-contained JSON Schema is
// refused at registration, as are jobgate's reserved names.
func TestRegistryRefusesBadSchemasAndReservedNames(t *testing.T) {
	t.Parallel()
	for name, schema := range map[string]string{
		"not JSON":         `{"type":`,
		"invalid keyword":  `{"type":"integer","minimum":"one"}`,
		"remote reference": `{"$ref":"https://example.com/schema.json"}`,
	} {
		_, err := job.NewRegistry(schemaKind(schema))
		require.Error(t, err, name)
		require.ErrorContains(t, err, `"schematic"`, name)
	}
	reserved := schemaKind(`{}`)
	reserved.Name = "jobgate.webhook.render"
	_, err := job.NewRegistry(reserved)
	require.ErrorContains(t, err, "jobgate's own")
}

// A validation error names the kind whose input failed, and reads as the
// request's own when no kind is involved (a schedule's spec).
func TestValidationErrorText(t *testing.T) {
	t.Parallel()
	fields := []job.FieldError{{Field: "/every", Message: "must be at least 1s"}, {Field: "/cron", Message: "send cron or every, not both"}}
	require.Equal(t, `invalid input for kind "sleep": /cron: send cron or every, not both; /every: must be at least 1s`,
		(&job.ValidationError{Kind: "sleep", Fields: fields}).Error())
	require.Equal(t, `invalid request: /cron: send cron or every, not both; /every: must be at least 1s`,
		(&job.ValidationError{Fields: fields}).Error())
}
