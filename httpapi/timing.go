package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jobgate/jobgate/job"
)

// timing reads when and in what order a submission runs: its start time
// (zero: now) from runAt or delaySeconds, at most MaxDelay ahead, and its
// priority (0: the default). Errors are a *job.ValidationError (422).
func (s *Server) timing(b submitBody) (time.Time, int, error) {
	var (
		errs  []job.FieldError
		runAt time.Time
		now   = s.cfg.Now()
		limit = fmt.Sprintf("at most %s ahead (this deployment's JOBGATE_MAX_DELAY)", s.cfg.MaxDelay)
	)
	switch {
	case b.RunAt != "" && b.DelaySeconds != nil:
		errs = append(errs, job.FieldError{Field: "/runAt", Message: "send runAt or delaySeconds, not both"})
	case b.RunAt != "":
		t, err := time.Parse(time.RFC3339Nano, b.RunAt)
		switch {
		case err != nil:
			errs = append(errs, job.FieldError{Field: "/runAt", Message: "must be an RFC 3339 time such as 2030-01-02T15:04:05Z, not " + strconv.Quote(b.RunAt)})
		case t.Sub(now) > s.cfg.MaxDelay:
			errs = append(errs, job.FieldError{Field: "/runAt", Message: "must be " + limit})
		default:
			// A time in the past starts the job now.
			runAt = t
		}
	case b.DelaySeconds != nil:
		d := *b.DelaySeconds
		switch {
		case d < 0:
			errs = append(errs, job.FieldError{Field: "/delaySeconds", Message: "must not be negative"})
		case d > int64(s.cfg.MaxDelay/time.Second):
			errs = append(errs, job.FieldError{Field: "/delaySeconds", Message: "must be " + limit})
		case d > 0:
			runAt = now.Add(time.Duration(d) * time.Second)
		}
	}
	priority := 0
	if b.Priority != nil {
		priority = *b.Priority
		if priority < job.MinPriority || priority > job.MaxPriority {
			errs = append(errs, job.FieldError{Field: "/priority", Message: fmt.Sprintf("must be %d (dispatched first) to %d (last), not %d", job.MinPriority, job.MaxPriority, priority)})
		}
	}
	if len(errs) > 0 {
		return time.Time{}, 0, &job.ValidationError{Kind: b.Kind, Fields: errs}
	}
	return runAt, priority, nil
}

// validScheduleID reports whether id can name a schedule: 1 to 64
// letters, digits, '-' or '_'.
func validScheduleID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
