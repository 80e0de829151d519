// Package primes is an example of a custom job kind: "primes" counts the
// primes below a bound, reporting progress as it goes and stopping as soon
// as the job is canceled; with "file": true its result is a CSV file of the
// primes (streamed to blob storage and downloaded from the result URL)
// rather than a JSON summary. cmd/jobgate-primes is jobgate with it added.
package primes

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jobgate/jobgate/job"
)

// Input is the input of the primes kind.
type Input struct {
	// Below is the exclusive upper bound, 2 to 100 000 000.
	Below int `json:"below"`
	// File asks for the primes themselves, as a CSV file.
	File bool `json:"file,omitempty"`
}

// Summary is the JSON result.
type Summary struct {
	Count   int `json:"count"`
	Largest int `json:"largest"`
}

// Kind returns the primes kind. Its input schema is checked before a job
// is accepted; Validate adds a rule a schema cannot say.
func Kind() job.Kind {
	return job.Define(job.KindSpec[Input]{
		Name:             "primes",
		Description:      "Counts the primes below a bound (or lists them in a CSV file).",
		ExpectedDuration: "about a second per 10 million",
		InputSchema: `{"type":"object","additionalProperties":false,"required":["below"],"properties":{` +
			`"below":{"type":"integer","minimum":2,"maximum":100000000},"file":{"type":"boolean"}}}`,
		Validate: func(in Input) []job.FieldError {
			if in.File && in.Below > 10_000_000 {
				return []job.FieldError{{Field: "/input/below", Message: "must be at most 10000000 with file: true"}}
			}
			return nil
		},
		Plan: func(in Input) job.Plan {
			expected := time.Duration(in.Below/10_000_000+1) * time.Second
			return job.Plan{
				Expected: expected,
				Timeout:  10*expected + time.Minute,
				Retry:    job.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
			}
		},
		Run: run,
	})
}

// chunk is how many numbers are sieved between progress reports and
// cancellation checks.
const chunk = 1 << 20

func run(ctx context.Context, in Input, report job.Reporter) (any, error) {
	composite := make([]bool, in.Below)
	var s Summary
	for lo := 2; lo < in.Below; lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err // canceled: stop at once
		}
		for n := lo; n < min(lo+chunk, in.Below); n++ {
			if composite[n] {
				continue
			}
			s.Count, s.Largest = s.Count+1, n
			for m := n * n; m < in.Below && m > 0; m += n {
				composite[m] = true
			}
		}
		report(job.Progress{Current: int64(min(lo+chunk, in.Below)), Total: int64(in.Below),
			Message: fmt.Sprintf("sieved up to %d, %d primes so far", min(lo+chunk, in.Below), s.Count)})
	}
	if !in.File {
		return s, nil
	}
	info, _ := job.InfoFrom(ctx)
	return &job.File{
		Name:        "primes-" + info.ID + ".csv",
		ContentType: "text/csv; charset=utf-8",
		Write: func(ctx context.Context, w io.Writer) error {
			if _, err := io.WriteString(w, "prime\n"); err != nil {
				return err
			}
			buf := make([]byte, 0, 64<<10)
			for n := 2; n < in.Below; n++ {
				if composite[n] {
					continue
				}
				buf = strconv.AppendInt(buf, int64(n), 10)
				buf = append(buf, '\n')
				if len(buf) > 60<<10 {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			_, err := w.Write(buf)
			return err
		},
	}, nil
}
