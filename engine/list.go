package engine

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/google/uuid"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// cursor is what a listing's opaque cursor carries: Temporal's page token
// and a digest of the filters it belongs to.
type cursor struct {
	Token  []byte `json:"t"`
	Filter string `json:"f"`
}

// List implements job.Service from Temporal's visibility store: running
// jobs first, then finished ones by completion, newest first (the order
// Temporal's visibility returns). A listed job carries what visibility
// keeps (search attributes, memo, close status and time) and names the
// rest in its Unknown fields, never a made-up value (listingGaps): a
// listing never contradicts GET. Get a job for the rest.
func (s *Service) List(ctx context.Context, tenant string, f job.ListFilter) (*job.Page, error) {
	query, err := listQuery(tenant, f, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(query))
	filterID := base64.RawURLEncoding.EncodeToString(digest[:12])
	var token []byte
	if f.Cursor != "" {
		raw, ok := s.openCursor(f.Cursor)
		var c cursor
		if !ok || json.Unmarshal(raw, &c) != nil {
			return nil, &job.InvalidCursorError{Reason: "it is not a cursor this API issued"}
		}
		if c.Filter != filterID {
			return nil, &job.InvalidCursorError{Reason: "it was issued for other filters; keep state and kind as they were"}
		}
		token = c.Token
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	resp, err := s.c.ListWorkflow(cctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:         query,
		PageSize:      int32(f.Limit),
		NextPageToken: token,
	})
	if err != nil {
		return nil, translate("list jobs", err)
	}
	page := &job.Page{}
	for _, info := range resp.GetExecutions() {
		j, flow, err := jobFromMemo(info.GetExecution().GetWorkflowId(), info.GetMemo())
		if err != nil {
			continue // not a job jobgate started
		}
		createdAtStart(j, recordTime(info.GetStartTime()))
		if !f.CreatedFrom.IsZero() && j.CreatedAt.Before(f.CreatedFrom) || !f.CreatedTo.IsZero() && !j.CreatedAt.Before(f.CreatedTo) {
			continue
		}
		j.Kind, _ = searchKeyword(info.GetSearchAttributes(), workflows.KindKey.GetName())
		j.UpdatedAt = j.CreatedAt
		// Listings do not look up webhooks; GET the job for its callback.
		j.Callback = nil
		recorded, _ := searchKeyword(info.GetSearchAttributes(), workflows.StateKey.GetName())
		j.State = jobState(info.GetStatus(), recorded, nil, false)
		untilStart(j, recordTime(info.GetStartTime()), recordTime(info.GetExecutionTime()), s.cfg.Now())
		if flow {
			// A workflow kind's progress, steps and waits are in its memo,
			// which visibility keeps too.
			applyWorkflowMemo(j, info.GetMemo(), nil)
			if j.State.Terminal() {
				j.WaitingFor = nil
			}
		}
		if t := info.GetCloseTime(); t != nil && j.State.Terminal() {
			j.CompletedAt = recordTime(t)
			j.UpdatedAt = laterOf(j.CompletedAt, j.UpdatedAt)
			j.ExpiresAt = j.CompletedAt.Add(s.cfg.ResultTTL)
			if !s.cfg.Now().Before(j.ExpiresAt) {
				continue
			}
		}
		j.Error = closeError(info.GetStatus())
		j.Unknown = listingGaps(j, info.GetStatus(), recorded, flow, info.GetType().GetName() != workflows.JobWorkflowName, info.GetMemo(), s.cfg.Now())
		page.Jobs = append(page.Jobs, j)
	}
	next := resp.GetNextPageToken()
	if len(next) > 0 && len(resp.GetExecutions()) >= f.Limit && f.Limit > 0 {
		// Visibility hands out a token whenever a page is full, also when
		// nothing follows: look one job ahead rather than give a cursor to
		// an empty page.
		ahead, err := s.c.ListWorkflow(cctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1, NextPageToken: next})
		if err != nil {
			return nil, translate("list jobs", err)
		}
		if len(ahead.GetExecutions()) == 0 {
			next = nil
		}
	}
	if len(next) > 0 {
		raw, _ := json.Marshal(cursor{Token: next, Filter: filterID})
		page.NextCursor = s.sealCursor(raw)
	}
	return page, nil
}

// sealCursor encodes a cursor with its signature: base64 of the cursor, a
// dot, base64 of the first 16 bytes of its HMAC-SHA256.
func (s *Service) sealCursor(raw []byte) string {
	return base64.RawURLEncoding.EncodeToString(raw) + "." + base64.RawURLEncoding.EncodeToString(s.cursorMAC(raw))
}

// openCursor returns a sealed cursor's content, and false when it is not
// one this deployment signed.
func (s *Service) openCursor(sealed string) ([]byte, bool) {
	body, sig, ok := strings.Cut(sealed, ".")
	if !ok {
		return nil, false
	}
	raw, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.cursorMAC(raw)) {
		return nil, false
	}
	return raw, true
}

func (s *Service) cursorMAC(raw []byte) []byte {
	m := hmac.New(sha256.New, s.cursorKey)
	m.Write(raw)
	return m.Sum(nil)[:16]
}

// listQuery is the visibility query for a tenant's jobs under f. Values are
// checked to be plain words, so nothing a client sends can change the
// query's shape.
func listQuery(tenant string, f job.ListFilter, now time.Time) (string, error) {
	if !plainWord(tenant) {
		return "", fmt.Errorf("tenant %q cannot be listed: unexpected characters", tenant)
	}
	// Jobs of every workflow type: Job, and external kinds' own.
	q := []string{jobsQuery(tenant)}
	if f.Kind != "" {
		if !plainWord(f.Kind) {
			return "", &job.ValidationError{Kind: f.Kind, Fields: []job.FieldError{{Field: "kind", Message: "is not a kind name"}}}
		}
		q = append(q, fmt.Sprintf("%s = '%s'", workflows.KindKey.GetName(), f.Kind))
	}
	if f.ScheduleID != "" {
		if !plainWord(f.ScheduleID) {
			return "", &job.ValidationError{Fields: []job.FieldError{{Field: "scheduleId", Message: "is not a schedule id"}}}
		}
		q = append(q, fmt.Sprintf("TemporalScheduledById = '%s'", temporalScheduleID(tenant, f.ScheduleID)))
	}
	if f.ParentID != "" {
		if _, err := uuid.Parse(f.ParentID); err != nil {
			return "", &job.ValidationError{Fields: []job.FieldError{{Field: "parentId", Message: "is not a job id"}}}
		}
		q = append(q, fmt.Sprintf("ParentWorkflowId = '%s'", f.ParentID))
	}
	// Creation times are in the memo; the workflow's start, a moment
	// later, narrows the search, and List keeps the exact range.
	if !f.CreatedFrom.IsZero() {
		q = append(q, fmt.Sprintf("StartTime >= '%s'", f.CreatedFrom.Add(-time.Minute).UTC().Format(time.RFC3339Nano)))
	}
	if !f.CreatedTo.IsZero() {
		q = append(q, fmt.Sprintf("StartTime < '%s'", f.CreatedTo.Add(time.Minute).UTC().Format(time.RFC3339Nano)))
	}
	switch f.State {
	case "":
	case job.StateScheduled:
		// Delayed jobs whose start time has not come (ExecutionTime is the
		// start plus the start delay).
		q = append(q, "ExecutionStatus = 'Running'", fmt.Sprintf("%s = '%s'", workflows.StateKey.GetName(), job.StateScheduled),
			fmt.Sprintf("ExecutionTime > '%s'", now.UTC().Format(time.RFC3339Nano)))
	case job.StateQueued:
		q = append(q, "ExecutionStatus = 'Running'", fmt.Sprintf("(%s = '%s' OR (%s = '%s' AND ExecutionTime <= '%s'))",
			workflows.StateKey.GetName(), job.StateQueued, workflows.StateKey.GetName(), job.StateScheduled, now.UTC().Format(time.RFC3339Nano)))
	case job.StateRunning:
		q = append(q, "ExecutionStatus = 'Running'", fmt.Sprintf("%s = '%s'", workflows.StateKey.GetName(), f.State))
	case job.StateCanceling:
		q = append(q, "ExecutionStatus = 'Running'", fmt.Sprintf("%s = '%s'", workflows.StateKey.GetName(), job.StateCanceling))
	case job.StateSucceeded:
		q = append(q, "ExecutionStatus = 'Completed'")
	case job.StateFailed:
		q = append(q, "ExecutionStatus IN ('Failed', 'TimedOut')")
	case job.StateCanceled:
		q = append(q, "ExecutionStatus IN ('Canceled', 'Terminated')")
	default:
		return "", &job.ValidationError{Fields: []job.FieldError{{Field: "state", Message: "is not a job state"}}}
	}
	return strings.Join(q, " AND "), nil
}

func plainWord(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:~", r)) {
			return false
		}
	}
	return true
}

// listingGaps names the fields of a listed job that visibility cannot
// tell, so that the listing leaves them out rather than contradict GET:
//   - the webhook's delivery, always (it is another workflow's);
//   - for a job of an activity kind that has run, its attempt, start,
//     progress and retry (they are in its pending activity, or its
//     history), and while it runs its last update, and the estimate
//     once that has passed (GET's then follows the progress); a job that
//     has not run has attempt 1 and none of them;
//   - for a workflow or external kind, what its memo does not hold: the
//     attempts of running steps, an external job's start and a succeeded
//     job's progress when its memo has none;
//   - a failed or terminated job's error (its message is in the history).
func listingGaps(j *job.Job, status enumspb.WorkflowExecutionStatus, recorded string, flow, ext bool, memo *commonpb.Memo, now time.Time) job.Fields {
	unknown := job.FieldCallback
	terminal := j.State.Terminal()
	fields := memo.GetFields()
	switch {
	case flow:
		unknown |= job.FieldStepAttempts
		if _, ok := fields[workflows.MemoStartedAt]; ext && terminal && !ok {
			unknown |= job.FieldStartedAt
		}
		if _, ok := fields[workflows.MemoProgress]; status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED && !ok {
			unknown |= job.FieldProgress
		}
	default:
		switch job.State(recorded) {
		case "", job.StateScheduled, job.StateQueued:
			if !terminal {
				break // not run: attempt 1, no start, progress or update
			}
			fallthrough
		default:
			unknown |= job.FieldAttempt | job.FieldStartedAt | job.FieldProgress | job.FieldRetry
			if !terminal {
				unknown |= job.FieldUpdatedAt
				if j.EstimatedCompletion.Before(now) {
					unknown |= job.FieldEstimate
				}
			}
		}
	}
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		unknown |= job.FieldFailure
	}
	return unknown
}
