package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/jobgate/jobgate/job"
)

// scheduleBody is a schedule as clients write it: the body of POST
// /v1/schedules, and what a PATCH merge-patches.
type scheduleBody struct {
	ID            string          `json:"id,omitempty"`
	Cron          string          `json:"cron,omitempty"`
	Every         string          `json:"every,omitempty"`
	Timezone      string          `json:"timezone,omitempty"`
	StartAt       *time.Time      `json:"startAt,omitempty"`
	EndAt         *time.Time      `json:"endAt,omitempty"`
	JitterSeconds int64           `json:"jitterSeconds,omitempty"`
	Job           scheduleJobBody `json:"job"`
	Overlap       job.Overlap     `json:"overlap,omitempty"`
	Paused        bool            `json:"paused,omitempty"`
}

// scheduleJobBody is the job each run of a schedule submits.
type scheduleJobBody struct {
	Kind        string          `json:"kind"`
	Input       json.RawMessage `json:"input,omitempty"`
	CallbackURL string          `json:"callbackUrl,omitempty"`
	Priority    *int            `json:"priority,omitempty"`
}

// scheduleView is a schedule as the API shows it.
type scheduleView struct {
	ID            string          `json:"id"`
	URL           string          `json:"url"`
	Cron          string          `json:"cron,omitempty"`
	Every         string          `json:"every,omitempty"`
	Timezone      string          `json:"timezone,omitempty"`
	StartAt       *Timestamp      `json:"startAt,omitempty"`
	EndAt         *Timestamp      `json:"endAt,omitempty"`
	JitterSeconds int64           `json:"jitterSeconds"`
	Job           scheduleJobView `json:"job"`
	Overlap       job.Overlap     `json:"overlap"`
	Paused        bool            `json:"paused"`
	NextRunTimes  []Timestamp     `json:"nextRunTimes"`
	RecentRuns    []scheduleRun   `json:"recentRuns"`
	SkippedRuns   int             `json:"skippedRuns"`
	CreatedAt     Timestamp       `json:"createdAt"`
	UpdatedAt     Timestamp       `json:"updatedAt"`
	// JobsURL lists the schedule's runs.
	JobsURL string `json:"jobsUrl"`
}

type scheduleJobView struct {
	Kind        string          `json:"kind"`
	Input       json.RawMessage `json:"input"`
	CallbackURL string          `json:"callbackUrl,omitempty"`
	Priority    int             `json:"priority"`
}

type scheduleRun struct {
	JobID       string    `json:"jobId"`
	StatusURL   string    `json:"statusUrl"`
	ScheduledAt Timestamp `json:"scheduledAt"`
	StartedAt   Timestamp `json:"startedAt"`
	// State is null when the job could not be read (expired).
	State *job.State `json:"state"`
}

type scheduleList struct {
	Schedules  []scheduleView `json:"schedules"`
	NextCursor *string        `json:"nextCursor"`
}

func schedulePath(id string) string { return "/v1/schedules/" + id }

// viewOf renders sc for the client of r.
func (s *Server) viewOf(r *http.Request, sc *job.Schedule) scheduleView {
	input := sc.Job.Input
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	v := scheduleView{ID: sc.ID, URL: s.url(r, schedulePath(sc.ID)), Cron: sc.Cron, Timezone: sc.Timezone,
		StartAt: timeOrNil(sc.StartAt), EndAt: timeOrNil(sc.EndAt), JitterSeconds: int64(sc.Jitter / time.Second),
		Job:     scheduleJobView{Kind: sc.Job.Kind, Input: input, CallbackURL: sc.Job.CallbackURL, Priority: sc.Job.Priority},
		Overlap: sc.Overlap, Paused: sc.Paused, NextRunTimes: []Timestamp{}, RecentRuns: []scheduleRun{}, SkippedRuns: sc.SkippedRuns,
		CreatedAt: Timestamp(sc.CreatedAt), UpdatedAt: Timestamp(sc.UpdatedAt),
		JobsURL: s.url(r, "/v1/jobs?scheduleId="+url.QueryEscape(sc.ID))}
	if v.Job.Priority == 0 {
		v.Job.Priority = job.DefaultPriority
	}
	if sc.Every > 0 {
		v.Every = sc.Every.String()
	}
	for _, t := range sc.NextRunTimes {
		v.NextRunTimes = append(v.NextRunTimes, Timestamp(t))
	}
	for _, run := range sc.RecentRuns {
		out := scheduleRun{JobID: run.JobID, StatusURL: s.url(r, statusPath(run.JobID)), ScheduledAt: Timestamp(run.ScheduledAt), StartedAt: Timestamp(run.StartedAt)}
		if run.State != "" {
			st := run.State
			out.State = &st
		}
		v.RecentRuns = append(v.RecentRuns, out)
	}
	return v
}

// bodyOf is the writable part of sc, as a PATCH merge-patches it.
func bodyOf(sc *job.Schedule) scheduleBody {
	b := scheduleBody{Cron: sc.Cron, Timezone: sc.Timezone, JitterSeconds: int64(sc.Jitter / time.Second),
		Job: scheduleJobBody{Kind: sc.Job.Kind, Input: sc.Job.Input, CallbackURL: sc.Job.CallbackURL}, Overlap: sc.Overlap, Paused: sc.Paused}
	if sc.Every > 0 {
		b.Every = sc.Every.String()
	}
	if !sc.StartAt.IsZero() {
		t := sc.StartAt
		b.StartAt = &t
	}
	if !sc.EndAt.IsZero() {
		t := sc.EndAt
		b.EndAt = &t
	}
	if sc.Job.Priority != 0 {
		p := sc.Job.Priority
		b.Job.Priority = &p
	}
	return b
}

// scheduleOf checks b's envelope (the engine checks the rest, the job's
// input included) and turns it into a schedule of tenant.
func (s *Server) scheduleOf(b scheduleBody, tenant string) (job.Schedule, error) {
	var errs []job.FieldError
	if b.ID != "" && !validScheduleID(b.ID) {
		errs = append(errs, job.FieldError{Field: "/id", Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	if err := validateSubmit(submitBody{Kind: b.Job.Kind, Input: b.Job.Input, CallbackURL: b.Job.CallbackURL}, s.signsWebhooks(tenant)); err != nil {
		var invalid *job.ValidationError
		if !errors.As(err, &invalid) {
			return job.Schedule{}, err
		}
		for _, f := range invalid.Fields {
			errs = append(errs, job.FieldError{Field: "/job" + f.Field, Message: f.Message})
		}
	}
	sc := job.Schedule{ID: b.ID, Tenant: tenant, Cron: b.Cron, Timezone: b.Timezone, Jitter: time.Duration(b.JitterSeconds) * time.Second,
		Job: job.ScheduleJob{Kind: b.Job.Kind, Input: b.Job.Input, CallbackURL: b.Job.CallbackURL}, Overlap: b.Overlap, Paused: b.Paused,
		Weight: s.limiter.limits(tenant).Weight}
	if b.Job.Priority != nil {
		sc.Job.Priority = *b.Job.Priority
		if sc.Job.Priority < job.MinPriority || sc.Job.Priority > job.MaxPriority {
			errs = append(errs, job.FieldError{Field: "/job/priority", Message: fmt.Sprintf("must be %d (dispatched first) to %d (last)", job.MinPriority, job.MaxPriority)})
		}
	}
	if b.Every != "" {
		d, err := time.ParseDuration(b.Every)
		if err != nil || d < time.Second {
			errs = append(errs, job.FieldError{Field: "/every", Message: "must be a duration of at least 1s, such as \"90s\" or \"1h\", not " + strconv.Quote(b.Every)})
		}
		sc.Every = d
	}
	if b.StartAt != nil {
		sc.StartAt = *b.StartAt
	}
	if b.EndAt != nil {
		sc.EndAt = *b.EndAt
	}
	if b.JitterSeconds < 0 {
		errs = append(errs, job.FieldError{Field: "/jitterSeconds", Message: "must not be negative"})
	}
	if len(errs) > 0 {
		return job.Schedule{}, &job.ValidationError{Fields: errs} // the schedule's errors, not its kind's
	}
	return sc, nil
}

// scheduleError answers the schedule service's own errors; others go to
// Error as they are.
func (s *Server) scheduleError(w http.ResponseWriter, r *http.Request, err error) {
	var quota *job.ScheduleQuotaError
	switch {
	case errors.Is(err, job.ErrScheduleNotFound):
		err = problem(http.StatusNotFound, "not-found", "No such schedule", "There is no schedule with this id for your tenant.")
	case errors.Is(err, job.ErrScheduleExists):
		err = problem(http.StatusConflict, "schedule-exists", "The schedule exists", "Your tenant has a schedule with this id; choose another id, or PATCH that one.")
	case errors.As(err, &quota):
		p := problem(http.StatusTooManyRequests, "too-many-schedules", "Too many schedules",
			fmt.Sprintf("Your tenant keeps %d schedules, its maximum; delete one first.", quota.Limit))
		p.retryAfter = 60
		err = p
	}
	s.Error(w, r, err)
}

func (s *Server) writeSchedule(w http.ResponseWriter, r *http.Request, code int, sc *job.Schedule) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, code, s.viewOf(r, sc))
}

// handleCreateSchedule creates a schedule: 201 with Location.
func (s *Server) handleCreateSchedule(w http.ResponseWriter, r *http.Request) {
	var body scheduleBody
	if err := s.decodeJSON(w, r, &body); err != nil {
		s.Error(w, r, err)
		return
	}
	sc, err := s.scheduleOf(body, s.tenant(r))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	created, err := s.schedules.CreateSchedule(r.Context(), sc, s.cfg.MaxSchedules)
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	w.Header().Set("Location", s.url(r, schedulePath(created.ID)))
	s.writeSchedule(w, r, http.StatusCreated, created)
}

// handleListSchedules answers the caller's schedules, a page at a time.
func (s *Server) handleListSchedules(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.Error(w, r, badRequest("invalid-query", "Invalid query parameter", "limit must be a whole number from 1 to 100, not "+strconv.Quote(v)+"."))
			return
		}
		limit = n
	}
	page, err := s.schedules.ListSchedules(r.Context(), s.tenant(r), limit, q.Get("cursor"))
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	body := scheduleList{Schedules: make([]scheduleView, 0, len(page.Schedules))}
	for _, sc := range page.Schedules {
		body.Schedules = append(body.Schedules, s.viewOf(r, sc))
	}
	if page.NextCursor != "" {
		body.NextCursor = &page.NextCursor
		next := url.Values{"cursor": {page.NextCursor}}
		if v := q.Get("limit"); v != "" {
			next.Set("limit", v)
		}
		w.Header().Set("Link", "<"+s.url(r, "/v1/schedules?"+next.Encode())+`>; rel="next"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, r, http.StatusOK, body)
}

// handleGetSchedule answers one schedule with its next and recent runs.
func (s *Server) handleGetSchedule(w http.ResponseWriter, r *http.Request) {
	sc, err := s.schedules.GetSchedule(r.Context(), s.tenant(r), mux.Vars(r)["id"])
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	s.writeSchedule(w, r, http.StatusOK, sc)
}

// handlePatchSchedule applies a JSON merge patch (RFC 7396) to the
// schedule's writable fields and saves it, validated as on creation.
func (s *Server) handlePatchSchedule(w http.ResponseWriter, r *http.Request) {
	var patch map[string]any
	if err := s.decodeJSON(w, r, &patch); err != nil {
		s.Error(w, r, err)
		return
	}
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	if v, ok := patch["id"]; ok && v != id {
		s.Error(w, r, &job.ValidationError{Fields: []job.FieldError{{Field: "/id", Message: "cannot change; create a new schedule instead"}}})
		return
	}
	updated, err := s.schedules.UpdateSchedule(r.Context(), tenant, id, func(cur *job.Schedule) error {
		raw, err := json.Marshal(bodyOf(cur))
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		merged, err := json.Marshal(mergePatch(doc, patch))
		if err != nil {
			return err
		}
		var next scheduleBody
		dec := json.NewDecoder(bytes.NewReader(merged))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&next); err != nil {
			return badRequest("malformed-json", "Malformed JSON", "The patched schedule is not a schedule: "+describeJSONError(err, &next))
		}
		next.ID = ""
		sc, err := s.scheduleOf(next, tenant)
		if err != nil {
			return err
		}
		sc.ID = id
		*cur = sc
		return nil
	})
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	s.writeSchedule(w, r, http.StatusOK, updated)
}

// mergePatch applies patch to target as RFC 7396 says: objects merge
// member by member, null removes a member, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// handleDeleteSchedule deletes a schedule: 204; its jobs stay.
func (s *Server) handleDeleteSchedule(w http.ResponseWriter, r *http.Request) {
	if err := s.schedules.DeleteSchedule(r.Context(), s.tenant(r), mux.Vars(r)["id"]); err != nil {
		s.scheduleError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// handlePauseSchedule pauses a schedule, or with unpause unpauses it.
func (s *Server) handlePauseSchedule(unpause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc, err := s.schedules.PauseSchedule(r.Context(), s.tenant(r), mux.Vars(r)["id"], !unpause)
		if err != nil {
			s.scheduleError(w, r, err)
			return
		}
		s.writeSchedule(w, r, http.StatusOK, sc)
	}
}

// handleTriggerSchedule starts one run now: 202 with the schedule.
func (s *Server) handleTriggerSchedule(w http.ResponseWriter, r *http.Request) {
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	if err := s.schedules.TriggerSchedule(r.Context(), tenant, id); err != nil {
		s.scheduleError(w, r, err)
		return
	}
	s.answerAccepted(w, r, tenant, id)
}

// backfillBody is the body of POST /v1/schedules/{id}/backfill.
type backfillBody struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// handleBackfillSchedule starts the runs due in a past range: 202.
func (s *Server) handleBackfillSchedule(w http.ResponseWriter, r *http.Request) {
	var body backfillBody
	if err := s.decodeJSON(w, r, &body); err != nil {
		s.Error(w, r, err)
		return
	}
	if body.From.IsZero() || body.To.IsZero() {
		s.Error(w, r, &job.ValidationError{Fields: []job.FieldError{{Field: "/from", Message: "from and to (RFC 3339 times) are required"}}})
		return
	}
	tenant, id := s.tenant(r), mux.Vars(r)["id"]
	if err := s.schedules.BackfillSchedule(r.Context(), tenant, id, body.From, body.To); err != nil {
		s.scheduleError(w, r, err)
		return
	}
	s.answerAccepted(w, r, tenant, id)
}

// answerAccepted answers a trigger or backfill: 202 with the schedule,
// whose recentRuns show the runs once Temporal has started them.
func (s *Server) answerAccepted(w http.ResponseWriter, r *http.Request, tenant, id string) {
	sc, err := s.schedules.GetSchedule(r.Context(), tenant, id)
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	w.Header().Set("Location", s.url(r, schedulePath(id)))
	s.writeSchedule(w, r, http.StatusAccepted, sc)
}

// noSchedules is the schedule service of a job service that keeps none (a
// test double): every schedule is not found, and none can be created.
type noSchedules struct{}

func (noSchedules) CreateSchedule(context.Context, job.Schedule, int) (*job.Schedule, error) {
	return nil, job.ErrUnavailable
}
func (noSchedules) GetSchedule(context.Context, string, string) (*job.Schedule, error) {
	return nil, job.ErrScheduleNotFound
}
func (noSchedules) ListSchedules(context.Context, string, int, string) (*job.SchedulePage, error) {
	return &job.SchedulePage{}, nil
}
func (noSchedules) UpdateSchedule(context.Context, string, string, func(*job.Schedule) error) (*job.Schedule, error) {
	return nil, job.ErrScheduleNotFound
}
func (noSchedules) DeleteSchedule(context.Context, string, string) error {
	return job.ErrScheduleNotFound
}
func (noSchedules) PauseSchedule(context.Context, string, string, bool) (*job.Schedule, error) {
	return nil, job.ErrScheduleNotFound
}
func (noSchedules) TriggerSchedule(context.Context, string, string) error {
	return job.ErrScheduleNotFound
}
func (noSchedules) BackfillSchedule(context.Context, string, string, time.Time, time.Time) error {
	return job.ErrScheduleNotFound
}
