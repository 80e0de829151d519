// Package engine implements the job service over Temporal: every job is a
// workflow whose ID is the job's ID, status comes from Temporal's own record
// of the workflow (so it answers with no worker running), cancellation is
// workflow cancellation, and Temporal's errors are translated into job's
// errors here, at the boundary.
package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Config is how a Service uses Temporal. Zero values take the defaults
// shown.
type Config struct {
	// TaskQueue is the task queue jobs run on (default "jobgate").
	TaskQueue string
	// Namespace is the Temporal namespace of the client (default
	// "default"); the backlog check needs it.
	Namespace string
	// MaxBacklog is the task queue backlog over which submissions are
	// refused with job.ErrOverloaded; 0 disables the check.
	MaxBacklog int64
	// CallTimeout bounds every call to Temporal (default 5s); a call that
	// takes longer fails with job.ErrUnavailable.
	CallTimeout time.Duration
	// EagerStart asks Temporal to hand a new job's first workflow task
	// straight to a worker in this process, when there is one.
	EagerStart bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NewID returns a random job ID (default a UUID v4).
	NewID func() string
	// ResultTTL is how long a finished job stays readable; after it the job
	// answers job.ErrExpired (default 24h).
	ResultTTL time.Duration
	// WatchInterval is how often a watched job is looked up, once for all
	// its watchers, after a change (default 250ms).
	WatchInterval time.Duration
	// WatchMaxInterval is how far a watched job's interval backs off: it
	// doubles from WatchInterval with each look-up that finds no change,
	// up to this, and a change resets it (default 4s; at least
	// WatchInterval). A job's end does not wait for it: the workflow's
	// close reaches watchers at once, and so does a change its history
	// records before the close (the look-up then takes its turn under
	// WatchRate).
	WatchMaxInterval time.Duration
	// WatchRate bounds the look-ups of watched jobs per second, across all
	// of them however many jobs and watchers there are (0: no bound).
	// When more jobs are watched than the rate covers at their intervals,
	// each waits its turn: a change shows after about watched jobs / rate
	// seconds. The look-up after a job's close does not wait.
	WatchRate float64
	// FinishedCacheSize bounds how many finished jobs' statuses are kept
	// in memory; they never change (default 10000, negative disables).
	FinishedCacheSize int
	// Blobs is where results too large for the workflow's history are
	// kept; nil answers such results with an error.
	Blobs *blob.Store
	// Secret is the deployment's own secret, which every API instance of
	// a deployment shares and no one else holds: the job IDs derived from
	// Idempotency-Keys are keyed by it (so no one can tell the job of a
	// key, such as another tenant's order-42, from its id), and listing
	// cursors are signed with it (so a cursor this deployment did not
	// issue is refused without calling Temporal). Changing it changes the
	// job of every key. Empty derives one from Namespace and TaskQueue,
	// which anyone who knows those can compute: for tests and tools only.
	Secret []byte
}

// Service is the job service over a Temporal client. It is safe for
// concurrent use.
type Service struct {
	c        client.Client
	kinds    *job.Registry
	cfg      Config
	finished *finishedCache
	watches  *watchHub
	active   activeCounts
	backlog  backlog
	// idKey keys the job IDs of Idempotency-Keys, cursorKey signs
	// listing cursors; both are derived from Config.Secret.
	idKey, cursorKey []byte
}

// New returns a Service that runs jobs of kinds on the Temporal namespace c
// is connected to. kinds may be nil for a Service that only reads jobs (as
// workers do for export and webhooks); its Submit then fails.
func New(c client.Client, kinds *job.Registry, cfg Config) *Service {
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = "jobgate"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string { return uuid.NewString() }
	}
	if cfg.ResultTTL <= 0 {
		cfg.ResultTTL = 24 * time.Hour
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 250 * time.Millisecond
	}
	if cfg.WatchMaxInterval <= 0 {
		cfg.WatchMaxInterval = 4 * time.Second
	}
	if cfg.FinishedCacheSize == 0 {
		cfg.FinishedCacheSize = 10000
	}
	secret := cfg.Secret
	if len(secret) == 0 {
		derived := sha256.Sum256([]byte("jobgate deployment secret\x00" + cfg.Namespace + "\x00" + cfg.TaskQueue))
		secret = derived[:]
	}
	s := &Service{c: c, kinds: kinds, cfg: cfg, idKey: subkey(secret, "job id"), cursorKey: subkey(secret, "listing cursor"), finished: newFinishedCache(cfg.FinishedCacheSize), active: activeCounts{counts: map[string]activeCount{}, accepts: map[string]*recentAccepts{}}}
	s.watches = newWatchHub(s.Get, cfg.WatchInterval, cfg.CallTimeout)
	s.watches.closed, s.watches.final = s.waitClosed, s.closedJob
	s.watches.backOff(cfg.WatchMaxInterval)
	s.watches.limit(cfg.WatchRate)
	return s
}

// Kinds returns the registry of kinds the service runs.
func (s *Service) Kinds() *job.Registry { return s.kinds }

// KeyedID is the job ID of tenant's Idempotency-Key in a deployment
// whose Config.Secret is secret: an HMAC-SHA256 of the tenant and the key,
// written as a UUID (version 8), so that every API instance derives the
// same workflow ID and Temporal itself makes one key one job, while no one
// without the secret can tell which job a key names.
func KeyedID(secret []byte, tenant, key string) string {
	return keyedID(subkey(secret, "job id"), tenant, key)
}

func keyedID(idKey []byte, tenant, key string) string {
	m := hmac.New(sha256.New, idKey)
	// Length-prefixed, so no tenant/key pair can collide with another.
	m.Write([]byte(strconv.Itoa(len(tenant)) + ":" + tenant + ":" + key))
	var id uuid.UUID
	copy(id[:], m.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8: custom
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id.String()
}

// subkey is the key of purpose derived from the deployment's secret, so
// that no two uses share a key.
func subkey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("jobgate " + purpose))
	return m.Sum(nil)
}

// Submit implements job.Service.
func (s *Service) Submit(ctx context.Context, req job.SubmitRequest) (*job.Job, bool, error) {
	if s.kinds == nil {
		return nil, false, errors.New("submit job: this engine.Service was built without kinds and only reads jobs")
	}
	kind, err := s.kinds.Check(req.Kind, req.Input)
	if err != nil {
		return nil, false, err
	}
	// Only a keyed job can be asked for again, so only its request is
	// fingerprinted: a random ID never meets another request.
	id, fp := s.cfg.NewID(), ""
	if req.IdempotencyKey != "" {
		id = keyedID(s.idKey, req.Tenant, req.IdempotencyKey)
		if fp, err = Fingerprint(req); err != nil {
			return nil, false, err
		}
	}
	release, err := s.admit(ctx, req)
	if err != nil {
		// A retry of an accepted request gets its job even when no new job
		// would be admitted now: that is when clients retry.
		if req.IdempotencyKey != "" {
			if existing, gerr := s.Get(ctx, req.Tenant, id); gerr == nil {
				if existing.Fingerprint != fp {
					return nil, false, job.ErrKeyReused
				}
				return existing, false, nil
			}
		}
		return nil, false, err
	}
	defer release(false)
	plan := kind.Plan(req.Input)
	timeout := flow.TimeoutOf(kind, plan)
	now := s.cfg.Now().UTC()
	// A start time in the future is Temporal's start delay: the workflow
	// exists (and answers status) at once, its first task waits.
	delay, state, startsAt := startOf(req.RunAt, now)
	memo := map[string]any{workflows.MemoJob: workflows.JobMemo{
		Tenant:         req.Tenant,
		CreatedAt:      now,
		ExpectedMillis: plan.Expected.Milliseconds(),
		RequestID:      req.RequestID,
		Callback:       req.CallbackURL != "",
		Fingerprint:    fp,
		Workflow:       kind.IsWorkflow(),
		Priority:       priorityOf(req.Priority),
		RerunOf:        req.RerunOf,
	}}
	opts := client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: s.cfg.TaskQueue,
		// A finished job keeps its key until Temporal's retention removes it.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         s.cfg.EagerStart && delay == 0,
		StartDelay:                               delay,
		Priority:                                 dispatch(req.Tenant, req.Priority, req.FairnessWeight),
		Memo:                                     memo,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.TenantKey.ValueSet(req.Tenant),
			workflows.KindKey.ValueSet(req.Kind),
			workflows.StateKey.ValueSet(string(state)),
		),
		StaticSummary: fmt.Sprintf("%s job of tenant %s", req.Kind, req.Tenant),
	}
	in := s.workflowInput(req, kind, plan)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ext, isExternal := external.Of(kind)
	if isExternal {
		err = s.startExternal(cctx, opts, ext, req.Input, timeout)
	} else {
		_, err = s.c.ExecuteWorkflow(cctx, opts, workflows.JobWorkflowName, in)
	}
	release(err == nil)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		existing, err := s.Get(ctx, req.Tenant, id)
		if err != nil {
			return nil, false, err
		}
		if existing.Fingerprint != fp {
			return nil, false, job.ErrKeyReused
		}
		if isExternal && req.CallbackURL != "" {
			// A retry heals a watch the first attempt could not start.
			if err := s.watchExternal(ctx, req, id, delay+timeout); err != nil {
				return nil, false, err
			}
		}
		return existing, false, nil
	case err != nil:
		return nil, false, translate("start job", err)
	}
	if isExternal && req.CallbackURL != "" {
		if err := s.watchExternal(ctx, req, id, delay+timeout); err != nil {
			return nil, false, err
		}
	}
	var callback *job.Callback
	if req.CallbackURL != "" {
		callback = &job.Callback{State: job.CallbackPending}
	}
	return &job.Job{
		ID:                  id,
		Tenant:              req.Tenant,
		Kind:                req.Kind,
		State:               state,
		Attempt:             1,
		CreatedAt:           now,
		UpdatedAt:           now,
		EstimatedCompletion: startsAt.Add(plan.Expected),
		Fingerprint:         fp,
		Callback:            callback,
		ScheduledFor:        scheduledFor(delay, startsAt),
		Priority:            priorityOf(req.Priority),
		RerunOf:             req.RerunOf,
	}, true, nil
}

// admit refuses a new job while the task queue's backlog is too deep or the
// tenant has its maximum of active jobs. An admitted job holds its place
// under the cap until release is called with whether it started
// (reserveActive).
func (s *Service) admit(ctx context.Context, req job.SubmitRequest) (release func(started bool), err error) {
	if err := s.checkBacklog(ctx, s.queueOf(req.Kind)); err != nil {
		return nil, err
	}
	if err := s.checkBlobQuota(ctx, req.Tenant); err != nil {
		return nil, err
	}
	if req.MaxActive <= 0 {
		return s.noteStart(req.Tenant), nil
	}
	return s.reserveActive(ctx, req.Tenant, req.MaxActive)
}

// checkBlobQuota refuses a new job (*job.BlobQuotaError) while the
// tenant's blobs fill its quota: the job's result could not be kept. A
// usage that cannot be read admits the job (its writes find out).
func (s *Service) checkBlobQuota(ctx context.Context, tenant string) error {
	if s.cfg.Blobs == nil {
		return nil
	}
	var q *blob.QuotaError
	if err := s.cfg.Blobs.CheckQuota(ctx, tenant); errors.As(err, &q) {
		return &job.BlobQuotaError{Used: q.Used, Limit: q.Limit}
	}
	return nil
}

// Fingerprint identifies a submission by its kind, input (canonical JSON:
// key order and spacing do not matter) and callback URL.
func Fingerprint(req job.SubmitRequest) (string, error) {
	var input any
	if len(req.Input) > 0 {
		// Numbers stay as written: 12345678901234567 and ...568 differ.
		dec := json.NewDecoder(bytes.NewReader(req.Input))
		dec.UseNumber()
		if err := dec.Decode(&input); err != nil {
			return "", &job.ValidationError{Kind: req.Kind, Fields: []job.FieldError{{Field: "/input", Message: "must be valid JSON"}}}
		}
	}
	canonical, err := json.Marshal([]any{req.Kind, input, req.CallbackURL})
	if err != nil {
		return "", fmt.Errorf("fingerprint request: %w", err)
	}
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:]), nil
}

// Get implements job.Service.
func (s *Service) Get(ctx context.Context, tenant, id string) (*job.Job, error) {
	v, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return s.withCallback(ctx, v)
}

// Cancel implements job.Service.
func (s *Service) Cancel(ctx context.Context, tenant, id string) (*job.Job, error) {
	v, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	j := v.job
	switch j.State {
	case job.StateCanceled, job.StateCanceling:
		return j, nil
	case job.StateSucceeded, job.StateFailed:
		return j, &job.FinishedError{Job: j}
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	if err := s.c.CancelWorkflow(cctx, id, ""); err != nil {
		var notFound *serviceerror.NotFound
		if !errors.As(err, &notFound) {
			return nil, translate("cancel job", err)
		}
		// The workflow finished between the look-up and the cancel.
		v, err := s.load(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if v.job.State == job.StateCanceled {
			return v.job, nil
		}
		return v.job, &job.FinishedError{Job: v.job}
	}
	canceling := *j
	canceling.State = job.StateCanceling
	if canceling.Callback != nil {
		canceling.Callback = &job.Callback{State: job.CallbackPending}
	}
	canceling.UpdatedAt = s.cfg.Now().UTC()
	return &canceling, nil
}

// translate turns a Temporal error into a job error: unreachable, slow or
// overloaded Temporal is job.ErrUnavailable; anything else is returned
// wrapped, for the caller to log and answer 500.
func translate(op string, err error) error {
	var (
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
		canceled    *serviceerror.Canceled
		noNamespace *serviceerror.NamespaceNotFound
	)
	switch {
	case errors.Is(err, context.Canceled):
		// The caller went away (or is shutting down): not Temporal's fault.
		return fmt.Errorf("%s: %w", op, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &unavailable), errors.As(err, &deadline), errors.As(err, &exhausted), errors.As(err, &canceled):
		return fmt.Errorf("%s: %w (%v)", op, job.ErrUnavailable, err)
	case errors.As(err, &noNamespace):
		// jobgate's namespace existed when it started. Temporal answers
		// NamespaceNotFound when it cannot read its namespace registry,
		// as during a database outage with
		// system.forceSearchAttributesCacheRefreshOnRead on: a fault on
		// Temporal's side that retrying can outlast, like Unavailable.
		return fmt.Errorf("%s: %w (%v)", op, job.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
