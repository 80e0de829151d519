package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// A schedule is a Temporal Schedule whose action starts the Job workflow,
// so that operators see and steer it in the Temporal UI too. Its ID in
// Temporal is "<tenant>:<id>", and so is its action's workflow ID, which
// Temporal suffixes with each run's nominal time: a run's job ID is
// "acme:nightly-2030-01-02T03:00:00Z". Temporal starts a due run with
// reuse policy REJECT_DUPLICATE, so one time is never run twice, however
// many API instances there are and across restarts. The action's memo is
// the runs' job memo (without a creation time: each run's is its start)
// and, under memoSchedule, what jobgate was asked for, which Temporal's
// description of a schedule does not keep as written (a cron expression
// comes back as calendars).

// memoSchedule is the action memo field holding a scheduleMemo.
const memoSchedule = "schedule"

// scheduleMemo is the schedule as its client wrote it, bar the job's
// input, which is the action's argument.
type scheduleMemo struct {
	Cron        string        `json:"cron,omitempty"`
	Every       time.Duration `json:"every,omitempty"`
	Timezone    string        `json:"timezone,omitempty"`
	StartAt     time.Time     `json:"startAt,omitzero"`
	EndAt       time.Time     `json:"endAt,omitzero"`
	Jitter      time.Duration `json:"jitter,omitempty"`
	Overlap     job.Overlap   `json:"overlap"`
	Kind        string        `json:"kind"`
	CallbackURL string        `json:"callbackUrl,omitempty"`
	Priority    int           `json:"priority,omitempty"`
	Weight      float64       `json:"weight,omitempty"`
}

// scheduleRunID matches the job IDs of schedules' runs.
var scheduleRunID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}:[A-Za-z0-9_-]{1,64}-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// jobID reports whether id can name a job: a UUID (submitted jobs) or a
// schedule's run.
func jobID(id string) bool {
	if _, err := uuid.Parse(id); err == nil {
		return true
	}
	return scheduleRunID.MatchString(id)
}

// ownedRunID reports whether id, a valid job id, can be one of tenant's: a
// UUID may be anyone's, a schedule's run is its schedule's tenant's.
func ownedRunID(tenant, id string) bool {
	if _, err := uuid.Parse(id); err == nil {
		return true
	}
	return strings.HasPrefix(id, temporalScheduleID(tenant, ""))
}

// temporalScheduleID is the ID of tenant's schedule id in Temporal, and the
// prefix of its runs' workflow IDs. Tenants cannot hold ':', so no two
// tenants' schedules share one.
func temporalScheduleID(tenant, id string) string { return tenant + ":" + id }

// createdAtStart dates a schedule's run, whose memo (the schedule's) has no
// creation time, at its workflow's start.
func createdAtStart(j *job.Job, start time.Time) {
	if !j.CreatedAt.IsZero() || start.IsZero() {
		return
	}
	expected := j.EstimatedCompletion.Sub(j.CreatedAt)
	j.CreatedAt = start
	j.EstimatedCompletion = start.Add(expected)
}

var overlaps = map[job.Overlap]enumspb.ScheduleOverlapPolicy{
	job.OverlapSkip:           enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	job.OverlapBufferOne:      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	job.OverlapBufferAll:      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	job.OverlapCancelOther:    enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	job.OverlapTerminateOther: enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER,
	job.OverlapAllowAll:       enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// checkSchedule validates sc, filling its defaults, and returns its job's
// kind.
func (s *Service) checkSchedule(sc *job.Schedule) (job.Kind, error) {
	if s.kinds == nil {
		return job.Kind{}, errors.New("schedule: this engine.Service was built without kinds")
	}
	var errs []job.FieldError
	add := func(field, msg string) { errs = append(errs, job.FieldError{Field: field, Message: msg}) }
	switch {
	case sc.Cron != "" && sc.Every != 0:
		add("/cron", "send cron or every, not both")
	case sc.Cron != "":
		if n := len(strings.Fields(sc.Cron)); n != 5 {
			add("/cron", fmt.Sprintf("must have five fields (minute hour day-of-month month day-of-week), not %d", n))
		}
	case sc.Every != 0:
		if sc.Every < time.Second {
			add("/every", "must be at least 1s")
		}
	default:
		add("/cron", "send cron (five fields) or every (a duration such as \"90s\")")
	}
	if sc.Timezone != "" {
		if _, err := time.LoadLocation(sc.Timezone); err != nil {
			add("/timezone", "must be an IANA time zone such as Europe/Paris, not "+fmt.Sprintf("%q", sc.Timezone))
		}
	}
	if !sc.StartAt.IsZero() && !sc.EndAt.IsZero() && !sc.EndAt.After(sc.StartAt) {
		add("/endAt", "must be after startAt")
	}
	if sc.Jitter < 0 {
		add("/jitterSeconds", "must not be negative")
	}
	if sc.Overlap == "" {
		sc.Overlap = job.OverlapSkip
	}
	if !sc.Overlap.Valid() {
		add("/overlap", "must be skip, buffer_one, buffer_all, cancel_other, terminate_other or allow_all")
	}
	if p := sc.Job.Priority; p != 0 && (p < job.MinPriority || p > job.MaxPriority) {
		add("/job/priority", fmt.Sprintf("must be %d to %d", job.MinPriority, job.MaxPriority))
	}
	kind, err := s.kinds.Check(sc.Job.Kind, sc.Job.Input)
	var invalid *job.ValidationError
	switch {
	case errors.As(err, &invalid):
		for _, f := range invalid.Fields {
			add("/job"+f.Field, f.Message)
		}
	case err != nil:
		return job.Kind{}, err
	}
	if _, ok := external.Of(kind); ok {
		// A schedule's action starts the Job workflow on jobgate's queue.
		add("/job/kind", "is an external kind, which schedules cannot run yet; submit its jobs with POST /v1/jobs")
	}
	if len(errs) > 0 {
		// No Kind: the errors are the schedule's, not only its job input's.
		return job.Kind{}, &job.ValidationError{Fields: errs}
	}
	return kind, nil
}

// scheduleSpec is sc's calendar in Temporal's terms.
func scheduleSpec(sc *job.Schedule) *client.ScheduleSpec {
	spec := &client.ScheduleSpec{TimeZoneName: sc.Timezone, StartAt: sc.StartAt, EndAt: sc.EndAt, Jitter: sc.Jitter}
	if sc.Cron != "" {
		spec.CronExpressions = []string{sc.Cron}
	} else {
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: sc.Every}}
	}
	return spec
}

// scheduleAction is the action that starts each run of sc as a job.
func (s *Service) scheduleAction(sc *job.Schedule, kind job.Kind) *client.ScheduleWorkflowAction {
	plan := kind.Plan(sc.Job.Input)
	req := job.SubmitRequest{Tenant: sc.Tenant, Kind: sc.Job.Kind, Input: sc.Job.Input, CallbackURL: sc.Job.CallbackURL}
	return &client.ScheduleWorkflowAction{
		ID:        temporalScheduleID(sc.Tenant, sc.ID),
		Workflow:  workflows.JobWorkflowName,
		Args:      []any{s.workflowInput(req, kind, plan)},
		TaskQueue: s.cfg.TaskQueue,
		Memo: map[string]any{
			workflows.MemoJob: workflows.JobMemo{
				Tenant:         sc.Tenant,
				ExpectedMillis: plan.Expected.Milliseconds(),
				Callback:       sc.Job.CallbackURL != "",
				Priority:       priorityOf(sc.Job.Priority),
				ScheduleID:     sc.ID,
			},
			memoSchedule: scheduleMemo{Cron: sc.Cron, Every: sc.Every, Timezone: sc.Timezone, StartAt: sc.StartAt, EndAt: sc.EndAt,
				Jitter: sc.Jitter, Overlap: sc.Overlap, Kind: sc.Job.Kind, CallbackURL: sc.Job.CallbackURL, Priority: sc.Job.Priority, Weight: sc.Weight},
		},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.TenantKey.ValueSet(sc.Tenant),
			workflows.KindKey.ValueSet(sc.Job.Kind),
			workflows.StateKey.ValueSet(string(job.StateQueued)),
		),
		Priority:      dispatch(sc.Tenant, sc.Job.Priority, sc.Weight),
		StaticSummary: fmt.Sprintf("%s job of tenant %s, schedule %s", sc.Job.Kind, sc.Tenant, sc.ID),
	}
}

// scheduleAttributes are the search attributes of the schedule itself, so
// operators find a tenant's schedules in the Temporal UI and listings
// filter on them.
func scheduleAttributes(sc *job.Schedule) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(workflows.TenantKey.ValueSet(sc.Tenant), workflows.KindKey.ValueSet(sc.Job.Kind))
}

// CreateSchedule implements job.ScheduleService.
func (s *Service) CreateSchedule(ctx context.Context, sc job.Schedule, max int) (*job.Schedule, error) {
	if sc.ID == "" {
		sc.ID = uuid.NewString()
	}
	kind, err := s.checkSchedule(&sc)
	if err != nil {
		return nil, err
	}
	if max > 0 {
		n, err := s.countSchedules(ctx, sc.Tenant, max)
		if err != nil {
			return nil, err
		}
		if n >= max {
			return nil, &job.ScheduleQuotaError{Limit: max}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	_, err = s.c.ScheduleClient().Create(cctx, client.ScheduleOptions{
		ID:                    temporalScheduleID(sc.Tenant, sc.ID),
		Spec:                  *scheduleSpec(&sc),
		Action:                s.scheduleAction(&sc, kind),
		Overlap:               overlaps[sc.Overlap],
		Paused:                sc.Paused,
		TypedSearchAttributes: scheduleAttributes(&sc),
	})
	if err != nil {
		return nil, scheduleError("create schedule", err)
	}
	return s.GetSchedule(ctx, sc.Tenant, sc.ID)
}

// scheduleError translates Temporal's answers about a schedule.
func scheduleError(op string, err error) error {
	var (
		notFound *serviceerror.NotFound
		invalid  *serviceerror.InvalidArgument
	)
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return job.ErrScheduleExists
	case errors.As(err, &notFound):
		return job.ErrScheduleNotFound
	case errors.As(err, &invalid):
		// What Temporal refuses of a spec checkSchedule let through (a cron
		// field out of range): nothing was created or changed.
		return &job.ValidationError{Fields: []job.FieldError{{Field: "/cron", Message: "Temporal refused the schedule: " + invalid.Message}}}
	}
	return translate(op, err)
}

// countSchedules counts the tenant's schedules, up to atMost, from
// Temporal's visibility (seconds behind a creation: the cap is not exact
// under a burst of creations).
func (s *Service) countSchedules(ctx context.Context, tenant string, atMost int) (int, error) {
	n := 0
	var token []byte
	for {
		page, err := s.listScheduleEntries(ctx, tenant, min(atMost, 1000), token)
		if err != nil {
			return 0, err
		}
		n += len(page.GetSchedules())
		token = page.GetNextPageToken()
		if n >= atMost || len(token) == 0 {
			return n, nil
		}
	}
}

func (s *Service) listScheduleEntries(ctx context.Context, tenant string, limit int, token []byte) (*workflowservice.ListSchedulesResponse, error) {
	if !plainWord(tenant) {
		return nil, fmt.Errorf("tenant %q cannot be listed: unexpected characters", tenant)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.c.WorkflowService().ListSchedules(cctx, &workflowservice.ListSchedulesRequest{
		Namespace:       s.cfg.Namespace,
		MaximumPageSize: int32(limit),
		NextPageToken:   token,
		Query:           fmt.Sprintf("%s = '%s'", workflows.TenantKey.GetName(), tenant),
	})
	if err != nil {
		return nil, translate("list schedules", err)
	}
	return resp, nil
}

// ListSchedules implements job.ScheduleService: the page from Temporal's
// visibility, each schedule then described for its runs.
func (s *Service) ListSchedules(ctx context.Context, tenant string, limit int, cursor string) (*job.SchedulePage, error) {
	var token []byte
	if cursor != "" {
		var err error
		if token, err = base64.RawURLEncoding.DecodeString(cursor); err != nil {
			return nil, &job.InvalidCursorError{Reason: "it is not a cursor this API issued"}
		}
	}
	resp, err := s.listScheduleEntries(ctx, tenant, limit, token)
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return nil, &job.InvalidCursorError{Reason: "it is not a cursor this API issued"}
	}
	if err != nil {
		return nil, err
	}
	page := &job.SchedulePage{Schedules: []*job.Schedule{}}
	prefix := tenant + ":"
	for _, e := range resp.GetSchedules() {
		id, ok := strings.CutPrefix(e.GetScheduleId(), prefix)
		if !ok {
			continue
		}
		sc, err := s.GetSchedule(ctx, tenant, id)
		if errors.Is(err, job.ErrScheduleNotFound) {
			continue // deleted since visibility saw it
		}
		if err != nil {
			return nil, err
		}
		page.Schedules = append(page.Schedules, sc)
	}
	if next := resp.GetNextPageToken(); len(next) > 0 {
		page.NextCursor = base64.RawURLEncoding.EncodeToString(next)
	}
	return page, nil
}

// describeSchedule reads the tenant's schedule id from Temporal.
func (s *Service) describeSchedule(ctx context.Context, tenant, id string) (*client.ScheduleDescription, error) {
	if !plainWord(tenant) || !plainWord(id) || strings.ContainsAny(id, ".:~") {
		return nil, job.ErrScheduleNotFound
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	desc, err := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id)).Describe(cctx)
	if err != nil {
		return nil, scheduleError("describe schedule", err)
	}
	return desc, nil
}

// GetSchedule implements job.ScheduleService.
func (s *Service) GetSchedule(ctx context.Context, tenant, id string) (*job.Schedule, error) {
	desc, err := s.describeSchedule(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	sc, err := scheduleFrom(tenant, id, desc)
	if err != nil {
		return nil, err
	}
	recent := desc.Info.RecentActions
	if len(recent) > 10 {
		recent = recent[len(recent)-10:]
	}
	for _, a := range recent {
		run := job.ScheduleRun{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime}
		if a.StartWorkflowResult == nil {
			continue
		}
		run.JobID = a.StartWorkflowResult.WorkflowID
		if j, err := s.Get(ctx, tenant, run.JobID); err == nil {
			run.State = j.State
		}
		sc.RecentRuns = append(sc.RecentRuns, run)
	}
	return sc, nil
}

// scheduleFrom reads a schedule from Temporal's description of it.
func scheduleFrom(tenant, id string, desc *client.ScheduleDescription) (*job.Schedule, error) {
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	if !ok {
		return nil, fmt.Errorf("schedule %s: its action does not start a workflow; was it created by jobgate?", id)
	}
	dc := converter.GetDefaultDataConverter()
	var m scheduleMemo
	p, ok := action.Memo[memoSchedule].(*commonpb.Payload)
	if !ok {
		return nil, fmt.Errorf("schedule %s: its action's memo lacks %q; was it created by jobgate?", id, memoSchedule)
	}
	if err := dc.FromPayload(p, &m); err != nil {
		return nil, fmt.Errorf("schedule %s: decode memo: %w", id, err)
	}
	var in workflows.Input
	if len(action.Args) != 1 {
		return nil, fmt.Errorf("schedule %s: its action has %d arguments, not 1", id, len(action.Args))
	}
	if p, ok := action.Args[0].(*commonpb.Payload); !ok || dc.FromPayload(p, &in) != nil {
		return nil, fmt.Errorf("schedule %s: decode its action's input", id)
	}
	if in.Tenant != tenant {
		return nil, job.ErrScheduleNotFound
	}
	sc := &job.Schedule{ID: id, Tenant: tenant, Cron: m.Cron, Every: m.Every, Timezone: m.Timezone, StartAt: m.StartAt, EndAt: m.EndAt,
		Jitter: m.Jitter, Overlap: m.Overlap, Weight: m.Weight,
		Job:       job.ScheduleJob{Kind: m.Kind, Input: in.Input, CallbackURL: m.CallbackURL, Priority: m.Priority},
		CreatedAt: desc.Info.CreatedAt, UpdatedAt: desc.Info.LastUpdateAt, SkippedRuns: desc.Info.NumActionsSkippedOverlap}
	if sc.UpdatedAt.IsZero() {
		sc.UpdatedAt = sc.CreatedAt
	}
	if st := desc.Schedule.State; st != nil {
		sc.Paused = st.Paused
	}
	if !sc.Paused {
		sc.NextRunTimes = slices.Clone(desc.Info.NextActionTimes[:min(5, len(desc.Info.NextActionTimes))])
	}
	return sc, nil
}

// UpdateSchedule implements job.ScheduleService. The change is applied to
// the schedule as Temporal describes it within the update, and validated
// before anything is saved.
func (s *Service) UpdateSchedule(ctx context.Context, tenant, id string, change func(*job.Schedule) error) (*job.Schedule, error) {
	if _, err := s.describeSchedule(ctx, tenant, id); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	var failure error
	err := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id)).Update(cctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sc, err := scheduleFrom(tenant, id, &in.Description)
			if err == nil {
				err = change(sc)
			}
			var kind job.Kind
			if err == nil {
				sc.ID, sc.Tenant = id, tenant
				kind, err = s.checkSchedule(sc)
			}
			if err != nil {
				failure = err
				return nil, err
			}
			next := in.Description.Schedule
			next.Spec = scheduleSpec(sc)
			next.Action = s.scheduleAction(sc, kind)
			if next.Policy == nil {
				next.Policy = &client.SchedulePolicies{}
			}
			next.Policy.Overlap = overlaps[sc.Overlap]
			if next.State == nil {
				next.State = &client.ScheduleState{}
			}
			next.State.Paused = sc.Paused
			attrs := scheduleAttributes(sc)
			return &client.ScheduleUpdate{Schedule: &next, TypedSearchAttributes: &attrs}, nil
		},
	})
	if failure != nil {
		return nil, failure
	}
	if err != nil {
		return nil, scheduleError("update schedule", err)
	}
	return s.GetSchedule(ctx, tenant, id)
}

// DeleteSchedule implements job.ScheduleService.
func (s *Service) DeleteSchedule(ctx context.Context, tenant, id string) error {
	if _, err := s.describeSchedule(ctx, tenant, id); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	if err := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id)).Delete(cctx); err != nil {
		return scheduleError("delete schedule", err)
	}
	return nil
}

// PauseSchedule implements job.ScheduleService.
func (s *Service) PauseSchedule(ctx context.Context, tenant, id string, paused bool) (*job.Schedule, error) {
	if _, err := s.describeSchedule(ctx, tenant, id); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	h := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id))
	var err error
	if paused {
		err = h.Pause(cctx, client.SchedulePauseOptions{Note: "paused through jobgate"})
	} else {
		err = h.Unpause(cctx, client.ScheduleUnpauseOptions{Note: "unpaused through jobgate"})
	}
	if err != nil {
		return nil, scheduleError("pause schedule", err)
	}
	return s.GetSchedule(ctx, tenant, id)
}

// TriggerSchedule implements job.ScheduleService.
func (s *Service) TriggerSchedule(ctx context.Context, tenant, id string) error {
	if _, err := s.describeSchedule(ctx, tenant, id); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	err := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id)).Trigger(cctx,
		client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
	if err != nil {
		return scheduleError("trigger schedule", err)
	}
	return nil
}

// BackfillSchedule implements job.ScheduleService.
func (s *Service) BackfillSchedule(ctx context.Context, tenant, id string, from, to time.Time) error {
	if !to.After(from) {
		return &job.ValidationError{Fields: []job.FieldError{{Field: "/to", Message: "must be after from"}}}
	}
	if to.After(s.cfg.Now().Add(time.Minute)) {
		return &job.ValidationError{Fields: []job.FieldError{{Field: "/to", Message: "must not be in the future: backfill runs a past range"}}}
	}
	if _, err := s.describeSchedule(ctx, tenant, id); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	err := s.c.ScheduleClient().GetHandle(cctx, temporalScheduleID(tenant, id)).Backfill(cctx, client.ScheduleBackfillOptions{
		Backfill: []client.ScheduleBackfill{{Start: from, End: to, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}},
	})
	if err != nil {
		return scheduleError("backfill schedule", err)
	}
	return nil
}

// workflowInput is what the Job workflow of req starts with, for Submit
// and for a schedule's runs.
func (s *Service) workflowInput(req job.SubmitRequest, kind job.Kind, plan job.Plan) workflows.Input {
	return workflows.Input{
		Tenant:      req.Tenant,
		Kind:        req.Kind,
		Input:       req.Input,
		CallbackURL: req.CallbackURL,
		Timeout:     flow.TimeoutOf(kind, plan),
		Retry:       plan.Retry,
		ResultTTL:   s.cfg.ResultTTL,
		Scratch:     kind.KeepsScratch,
		Flow:        kind.IsWorkflow(),
		Version:     workflows.InputVersion,
		Local:       plan.Local && !kind.IsWorkflow(),
	}
}
