package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Schedule starts jobs on a calendar: every run is an ordinary job of the
// schedule's tenant that carries its ScheduleID.
type Schedule struct {
	// ID is the schedule's name, unique per tenant: 1-64 letters, digits,
	// '-' or '_'.
	ID     string
	Tenant string
	// Cron (five fields) or Every (at least a second), exactly one, say
	// when runs are due, in Timezone (IANA name; empty is UTC), between
	// StartAt and EndAt when set, each delayed by up to Jitter at random.
	Cron     string
	Every    time.Duration
	Timezone string
	StartAt  time.Time
	EndAt    time.Time
	Jitter   time.Duration
	// Job is what each run submits.
	Job ScheduleJob
	// Overlap says what happens when a run is due while another runs.
	Overlap Overlap
	// Paused schedules start no runs (trigger and backfill still do).
	Paused bool
	// Weight is the tenant's fairness weight its runs carry (0: 1).
	Weight float64

	// Read-only: filled when a schedule is read.

	// NextRunTimes are the next (up to five) times a run is due.
	NextRunTimes []time.Time
	// RecentRuns are the latest runs, oldest first.
	RecentRuns []ScheduleRun
	// SkippedRuns counts runs skipped because another was still going.
	SkippedRuns int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ScheduleJob is the job each run of a schedule submits.
type ScheduleJob struct {
	Kind        string
	Input       json.RawMessage
	CallbackURL string
	// Priority is 1 to 5; 0 means DefaultPriority.
	Priority int
}

// ScheduleRun is one run a schedule started.
type ScheduleRun struct {
	// JobID is the run's job.
	JobID string
	// ScheduledAt is when the run was due; StartedAt when it was started.
	ScheduledAt, StartedAt time.Time
	// State is the job's state; empty when it could not be read (it
	// expired, or Temporal did not answer in time).
	State State
}

// Overlap is a schedule's policy for a run that is due while the previous
// one still runs (Temporal's schedule overlap policies).
type Overlap string

// Overlap policies.
const (
	// OverlapSkip starts no run while one runs (the default).
	OverlapSkip Overlap = "skip"
	// OverlapBufferOne starts one run after the running one ends.
	OverlapBufferOne Overlap = "buffer_one"
	// OverlapBufferAll starts every due run, one after the other.
	OverlapBufferAll Overlap = "buffer_all"
	// OverlapCancelOther cancels the running one, then starts the new one.
	OverlapCancelOther Overlap = "cancel_other"
	// OverlapTerminateOther terminates the running one and starts the new.
	OverlapTerminateOther Overlap = "terminate_other"
	// OverlapAllowAll starts every run when due, however many run.
	OverlapAllowAll Overlap = "allow_all"
)

// Valid reports whether o is one of the policies.
func (o Overlap) Valid() bool {
	switch o {
	case OverlapSkip, OverlapBufferOne, OverlapBufferAll, OverlapCancelOther, OverlapTerminateOther, OverlapAllowAll:
		return true
	}
	return false
}

// SchedulePage is one page of a tenant's schedules.
type SchedulePage struct {
	Schedules []*Schedule
	// NextCursor continues the listing; empty on the last page.
	NextCursor string
}

// ScheduleService keeps tenants' schedules. Its implementations translate
// their engine's errors into this package's errors.
type ScheduleService interface {
	// CreateSchedule validates s (its job as a submission is) and creates
	// it, unless the tenant already keeps max schedules (max 0: no cap).
	// Errors: *ValidationError, *UnknownKindError, ErrScheduleExists,
	// *ScheduleQuotaError, ErrUnavailable.
	CreateSchedule(ctx context.Context, s Schedule, max int) (*Schedule, error)
	// GetSchedule returns the tenant's schedule id with its next and
	// recent runs. Errors: ErrScheduleNotFound, ErrUnavailable.
	GetSchedule(ctx context.Context, tenant, id string) (*Schedule, error)
	// ListSchedules returns the tenant's schedules a page at a time.
	// Errors: *InvalidCursorError, ErrUnavailable.
	ListSchedules(ctx context.Context, tenant string, limit int, cursor string) (*SchedulePage, error)
	// UpdateSchedule applies change to the schedule as it is now and saves
	// the result, validated as on creation. Errors: as CreateSchedule
	// (but no quota), ErrScheduleNotFound, and change's own.
	UpdateSchedule(ctx context.Context, tenant, id string, change func(*Schedule) error) (*Schedule, error)
	// DeleteSchedule deletes the schedule; the jobs it started stay.
	// Errors: ErrScheduleNotFound, ErrUnavailable.
	DeleteSchedule(ctx context.Context, tenant, id string) error
	// PauseSchedule pauses (paused true) or unpauses it. Errors: as
	// GetSchedule.
	PauseSchedule(ctx context.Context, tenant, id string, paused bool) (*Schedule, error)
	// TriggerSchedule starts one run now, whatever the overlap policy.
	// Errors: as GetSchedule.
	TriggerSchedule(ctx context.Context, tenant, id string) error
	// BackfillSchedule starts the runs that were due in [from, to).
	// Errors: as GetSchedule, *ValidationError.
	BackfillSchedule(ctx context.Context, tenant, id string, from, to time.Time) error
}

var (
	// ErrScheduleNotFound means there is no such schedule for this tenant.
	ErrScheduleNotFound = errors.New("schedule not found")
	// ErrScheduleExists means the tenant already has a schedule of that id.
	ErrScheduleExists = errors.New("schedule already exists")
)

// ScheduleQuotaError is returned for a new schedule while the tenant keeps
// its maximum.
type ScheduleQuotaError struct {
	Limit int
}

func (e *ScheduleQuotaError) Error() string {
	return fmt.Sprintf("the tenant keeps %d schedules, its maximum", e.Limit)
}
