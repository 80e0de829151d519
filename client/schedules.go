package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Rerun submits a new job with the kind, input, callback and priority of
// the finished job id; input, when not nil, replaces the input. key, when
// not empty, is the Idempotency-Key that makes it safe to retry. The new
// job's RerunOf is id.
//
// It returns a *Problem for an error answer: ErrConflict for a job that has
// not finished, ErrNotFound, ErrInvalid for an input the kind refuses;
// ctx.Err() when ctx ends, or a transport error.
func (c *Client) Rerun(ctx context.Context, id string, input any, key string) (*Job, error) {
	path, err := jobPath(id)
	if err != nil {
		return nil, err
	}
	r := request{method: http.MethodPost, path: path + "/rerun", header: http.Header{}}
	if input != nil {
		if r.body, err = json.Marshal(map[string]any{"input": input}); err != nil {
			return nil, fmt.Errorf("jobgate client: encoding the input of a rerun of %s: %w", id, err)
		}
		r.header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.header.Set("Idempotency-Key", key)
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusAccepted {
		return decodeJob(resp)
	}
	return nil, problemFrom(resp)
}

// ScheduleJob is the job each run of a schedule submits.
type ScheduleJob struct {
	Kind        string `json:"kind"`
	Input       any    `json:"input,omitempty"`
	CallbackURL string `json:"callbackUrl,omitempty"`
	// Priority is 1 to 5; 0 leaves the default, 3.
	Priority int `json:"priority,omitempty"`
}

// ScheduleSpec is a schedule as it is created: exactly one of Cron (five
// fields) and Every (a duration such as "90s").
type ScheduleSpec struct {
	// ID is the schedule's id (1-64 letters, digits, '-', '_'); empty lets
	// the server choose one.
	ID            string      `json:"id,omitempty"`
	Cron          string      `json:"cron,omitempty"`
	Every         string      `json:"every,omitempty"`
	Timezone      string      `json:"timezone,omitempty"`
	StartAt       *time.Time  `json:"startAt,omitempty"`
	EndAt         *time.Time  `json:"endAt,omitempty"`
	JitterSeconds int         `json:"jitterSeconds,omitempty"`
	Job           ScheduleJob `json:"job"`
	// Overlap is skip (the default), buffer_one, buffer_all, cancel_other,
	// terminate_other or allow_all.
	Overlap string `json:"overlap,omitempty"`
	Paused  bool   `json:"paused,omitempty"`
}

// Schedule is a schedule as the server shows it.
type Schedule struct {
	ID            string          `json:"id"`
	URL           string          `json:"url"`
	Cron          string          `json:"cron,omitempty"`
	Every         string          `json:"every,omitempty"`
	Timezone      string          `json:"timezone,omitempty"`
	StartAt       *time.Time      `json:"startAt,omitempty"`
	EndAt         *time.Time      `json:"endAt,omitempty"`
	JitterSeconds int             `json:"jitterSeconds"`
	Job           json.RawMessage `json:"job"`
	Overlap       string          `json:"overlap"`
	Paused        bool            `json:"paused"`
	// NextRunTimes are the next (up to five) times a run is due.
	NextRunTimes []time.Time `json:"nextRunTimes"`
	// RecentRuns are the latest runs, oldest first.
	RecentRuns []ScheduleRun `json:"recentRuns"`
	// SkippedRuns counts runs skipped while the previous one still ran.
	SkippedRuns int       `json:"skippedRuns"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	// JobsURL lists the schedule's runs (GET /v1/jobs?scheduleId=…).
	JobsURL string `json:"jobsUrl"`
}

// ScheduleRun is one run a schedule started: an ordinary job.
type ScheduleRun struct {
	JobID       string    `json:"jobId"`
	StatusURL   string    `json:"statusUrl"`
	ScheduledAt time.Time `json:"scheduledAt"`
	StartedAt   time.Time `json:"startedAt"`
	// State is the job's state; empty when the server could not read it.
	State State `json:"state"`
}

// SchedulePage is one page of the caller's schedules.
type SchedulePage struct {
	Schedules []Schedule `json:"schedules"`
	// NextCursor continues the listing (ListSchedules' cursor); empty on
	// the last page.
	NextCursor string `json:"nextCursor"`
}

// CreateSchedule creates a schedule. It returns a *Problem for an error
// answer: ErrInvalid (nothing was created), ErrConflict for an id in use,
// ErrRateLimited at the tenant's cap of schedules.
func (c *Client) CreateSchedule(ctx context.Context, spec ScheduleSpec) (*Schedule, error) {
	body, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: encoding schedule %q: %w", spec.ID, err)
	}
	return c.scheduleCall(ctx, http.MethodPost, "v1/schedules", body, "application/json", http.StatusCreated)
}

// GetSchedule returns the schedule id with its next and recent runs
// (ErrNotFound for another tenant's).
func (c *Client) GetSchedule(ctx context.Context, id string) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodGet, schedulePath(id), nil, "", http.StatusOK)
}

// ListSchedules returns a page of up to limit (0: the server's default)
// of the caller's schedules, after cursor (empty: the first page).
func (c *Client) ListSchedules(ctx context.Context, limit int, cursor string) (*SchedulePage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "v1/schedules", query: q})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, problemFrom(resp)
	}
	defer drainClose(resp.Body)
	var page SchedulePage
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes)).Decode(&page); err != nil {
		return nil, fmt.Errorf("jobgate client: reading the schedules: %w", err)
	}
	return &page, nil
}

// UpdateSchedule applies a JSON merge patch (RFC 7396) to the schedule:
// members of patch replace the schedule's, nil ones remove them, "job"
// merges member by member. ErrInvalid when the result is not a valid
// schedule (nothing changes).
func (c *Client) UpdateSchedule(ctx context.Context, id string, patch map[string]any) (*Schedule, error) {
	body, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("jobgate client: encoding the patch of schedule %q: %w", id, err)
	}
	return c.scheduleCall(ctx, http.MethodPatch, schedulePath(id), body, "application/merge-patch+json", http.StatusOK)
}

// DeleteSchedule deletes the schedule; the jobs it started stay.
func (c *Client) DeleteSchedule(ctx context.Context, id string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, path: schedulePath(id)})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return problemFrom(resp)
	}
	drainClose(resp.Body)
	return nil
}

// PauseSchedule pauses the schedule (paused true) or unpauses it.
func (c *Client) PauseSchedule(ctx context.Context, id string, paused bool) (*Schedule, error) {
	action := "/pause"
	if !paused {
		action = "/unpause"
	}
	return c.scheduleCall(ctx, http.MethodPost, schedulePath(id)+action, nil, "", http.StatusOK)
}

// TriggerSchedule starts one run of the schedule now.
func (c *Client) TriggerSchedule(ctx context.Context, id string) (*Schedule, error) {
	return c.scheduleCall(ctx, http.MethodPost, schedulePath(id)+"/trigger", nil, "", http.StatusAccepted)
}

// BackfillSchedule starts the runs of the schedule that were due in the
// past range [from, to).
func (c *Client) BackfillSchedule(ctx context.Context, id string, from, to time.Time) (*Schedule, error) {
	body, _ := json.Marshal(map[string]time.Time{"from": from, "to": to})
	return c.scheduleCall(ctx, http.MethodPost, schedulePath(id)+"/backfill", body, "application/json", http.StatusAccepted)
}

func schedulePath(id string) string { return "v1/schedules/" + url.PathEscape(id) }

// scheduleCall sends one request about a schedule and reads the schedule
// from an answer of status want.
func (c *Client) scheduleCall(ctx context.Context, method, path string, body []byte, contentType string, want int) (*Schedule, error) {
	r := request{method: method, path: path, body: body}
	if contentType != "" {
		r.header = http.Header{"Content-Type": {contentType}}
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, problemFrom(resp)
	}
	defer drainClose(resp.Body)
	var sc Schedule
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes)).Decode(&sc); err != nil {
		return nil, fmt.Errorf("jobgate client: reading schedule from %s %s: %w", method, path, err)
	}
	return &sc, nil
}
