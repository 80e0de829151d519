package primes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/examples/primes"
	"github.com/jobgate/jobgate/job"
)

func TestPrimes(t *testing.T) {
	t.Parallel()
	reg, err := job.NewRegistry(primes.Kind())
	require.NoError(t, err)
	k, err := reg.Check("primes", json.RawMessage(`{"below":100}`))
	require.NoError(t, err)

	var last job.Progress
	out, err := k.Run(context.Background(), json.RawMessage(`{"below":100}`), func(p job.Progress) { last = p })
	require.NoError(t, err)
	require.Equal(t, primes.Summary{Count: 25, Largest: 97}, out)
	require.Equal(t, 100, last.Percent())

	out, err = k.Run(context.Background(), json.RawMessage(`{"below":12,"file":true}`), func(job.Progress) {})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, out.(*job.File).Write(context.Background(), &buf))
	require.Equal(t, "prime\n2\n3\n5\n7\n11\n", buf.String())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = k.Run(ctx, json.RawMessage(`{"below":5000000}`), func(job.Progress) {})
	require.ErrorIs(t, err, context.Canceled)

	for input, field := range map[string]string{`{}`: "/input/below", `{"below":1}`: "/input/below", `{"below":20000000,"file":true}`: "/input/below", `{"below":5,"x":1}`: "/input/x"} {
		_, err := reg.Check("primes", json.RawMessage(input))
		var invalid *job.ValidationError
		require.True(t, errors.As(err, &invalid), input)
		require.True(t, strings.HasPrefix(invalid.Fields[0].Field, field), "%s: %v", input, invalid.Fields)
	}
}
