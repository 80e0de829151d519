package engine

import (
	"encoding/json"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// applyWorkflowMemo fills a workflow kind's job from the memo fields its
// workflow publishes (progress, steps, waitingFor, startedAt); pending are
// its pending activities, whose attempts the running steps show. Fields a
// workflow did not publish, or published in another shape, are left as
// they are: an external worker's memo is not jobgate's to trust.
func applyWorkflowMemo(j *job.Job, memo *commonpb.Memo, pending []*workflowpb.PendingActivityInfo) {
	fields := memo.GetFields()
	dc := converter.GetDefaultDataConverter()
	if p, ok := fields[workflows.MemoProgress]; ok {
		var pr job.Progress
		if dc.FromPayload(p, &pr) == nil {
			j.Progress = &pr
		}
	}
	if p, ok := fields[workflows.MemoStartedAt]; ok {
		var t time.Time
		if dc.FromPayload(p, &t) == nil && !t.IsZero() {
			j.StartedAt = t
			j.UpdatedAt = laterOf(j.UpdatedAt, t)
		}
	}
	if p, ok := fields[workflows.MemoWaitingFor]; ok {
		j.WaitingFor = decodeWaiting(p)
	}
	if p, ok := fields[workflows.MemoSteps]; ok {
		var steps []workflows.StepMemo
		if dc.FromPayload(p, &steps) == nil {
			attempts := map[string]int{}
			for _, pa := range pending {
				attempts[pa.GetActivityId()] = int(pa.GetAttempt())
			}
			j.Steps = make([]job.Step, len(steps))
			for i, s := range steps {
				j.Steps[i] = job.Step{Name: s.Name, State: s.State, StartedAt: s.StartedAt, CompletedAt: s.CompletedAt, JobID: s.JobID, Error: s.Error, Attempt: 1}
				if a, ok := attempts[s.Name]; ok && s.State == job.StateRunning && a > 1 {
					j.Steps[i].Attempt = a
				}
				j.UpdatedAt = laterOf(laterOf(j.UpdatedAt, s.StartedAt), s.CompletedAt)
			}
		}
	}
}

// decodeWaiting reads the waitingFor memo field: a list of input names
// (the convention external workers follow) or of {name, since}.
func decodeWaiting(p *commonpb.Payload) []job.Waiting {
	var raw []json.RawMessage
	if converter.GetDefaultDataConverter().FromPayload(p, &raw) != nil {
		return nil
	}
	var out []job.Waiting
	for _, r := range raw {
		var name string
		if json.Unmarshal(r, &name) == nil {
			if name != "" {
				out = append(out, job.Waiting{Name: name})
			}
			continue
		}
		var w workflows.WaitingMemo
		if json.Unmarshal(r, &w) == nil && w.Name != "" {
			out = append(out, job.Waiting{Name: w.Name, Since: w.Since})
		}
	}
	return out
}
