package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jobgate/jobgate/job"
)

// SleepInput is the input of the sleep kind.
type SleepInput struct {
	// Seconds to wait, 0 to 86400; required.
	Seconds *int `json:"seconds"`
}

// SleepResult is the result of the sleep kind.
type SleepResult struct {
	Slept int `json:"slept"`
}

// maxSleepSeconds is one day, the longest sleep job accepted.
const maxSleepSeconds = 86400

// Sleep is the sleep kind: it waits the given number of seconds, reporting
// progress each second, and stops within about a second when canceled. It is
// for demos, tests and benchmarks.
func Sleep() job.Kind {
	return job.Define(job.KindSpec[SleepInput]{
		Name:             "sleep",
		Description:      "Waits the given number of seconds, reporting progress every second.",
		ExpectedDuration: "the requested number of seconds",
		InputSchema: `{"type":"object","additionalProperties":false,"required":["seconds"],` +
			`"properties":{"seconds":{"type":"integer","minimum":0,"maximum":86400}}}`,
		Validate: func(in SleepInput) []job.FieldError {
			switch {
			case in.Seconds == nil:
				return []job.FieldError{{Field: "/input/seconds", Message: "is required: how many seconds to sleep"}}
			case *in.Seconds < 0 || *in.Seconds > maxSleepSeconds:
				return []job.FieldError{{Field: "/input/seconds", Message: fmt.Sprintf("must be between 0 and %d, got %d", maxSleepSeconds, *in.Seconds)}}
			}
			return nil
		},
		Plan: func(in SleepInput) job.Plan {
			d := time.Duration(in.secs()) * time.Second
			// Sleeping 0 seconds is done at once, with nothing to report
			// or interrupt: a local activity.
			return job.Plan{Expected: d, Timeout: d + time.Minute, Retry: job.RetryPolicy{MaximumAttempts: 10}, Local: d == 0}
		},
		Run: runSleep,
	})
}

func (in SleepInput) secs() int {
	if in.Seconds == nil {
		return 0
	}
	return *in.Seconds
}

func runSleep(ctx context.Context, in SleepInput, report job.Reporter) (any, error) {
	total := in.secs()
	progress := func(done int) job.Progress {
		return job.Progress{Current: int64(done), Total: int64(total), Message: fmt.Sprintf("slept %d of %d seconds", done, total)}
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for done := 0; done < total; {
		report(progress(done))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			done++
		}
	}
	report(progress(total))
	return SleepResult{Slept: total}, nil
}
