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
