package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/job"
)

// ApprovalInput is the input of an approval job.
type ApprovalInput struct {
	// Prompt says what is to be decided; it shows in the job's progress.
	Prompt string `json:"prompt"`
	// TimeoutSeconds bounds the wait for a decision (default 3600).
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// Decision is the input an approval job waits for, and its result.
type Decision struct {
	Approved bool   `json:"approved"`
	Comment  string `json:"comment,omitempty"`
}

// DecisionInput is the name of the input an approval job waits for.
const DecisionInput = "decision"

// MaxApprovalSeconds bounds an approval's timeoutSeconds (30 days).
const MaxApprovalSeconds = 30 * 24 * 3600

const approvalSchema = `{
  "type": "object",
  "properties": {
    "prompt": {"type": "string", "maxLength": 4000},
    "timeoutSeconds": {"type": "integer", "minimum": 1, "maximum": 2592000}
  },
  "additionalProperties": false
}`

const decisionSchema = `{
  "type": "object",
  "required": ["approved"],
  "properties": {
    "approved": {"type": "boolean"},
    "comment": {"type": "string", "maxLength": 4000}
  },
  "additionalProperties": false
}`

// Approval is the built-in approval kind, the durable "wait for a human":
// it waits up to timeoutSeconds for the input "decision"
// ({"approved": bool, "comment": string}) and succeeds with it as its
// result, approved or not; with no decision in time it fails (type
// "timeout").
func Approval() job.Kind {
	return Define(Spec[ApprovalInput]{
		Name:             "approval",
		Description:      "Waits for a decision (input \"decision\": {\"approved\": bool, \"comment\": string}) up to timeoutSeconds; the result is the decision.",
		InputSchema:      approvalSchema,
		ExpectedDuration: "until someone decides, at most timeoutSeconds",
		Inputs: []job.Input{{
			Name:        DecisionInput,
			Description: "The decision: approved or not, with an optional comment.",
			Schema:      json.RawMessage(decisionSchema),
		}},
		Plan: func(in ApprovalInput) job.Plan {
			return job.Plan{Expected: approvalTimeout(in), Timeout: approvalTimeout(in) + time.Hour}
		},
		Workflow: func(ctx workflow.Context, in ApprovalInput) (any, error) {
			if in.Prompt != "" {
				Progress(ctx, 0, 1, in.Prompt)
			}
			var d Decision
			err := WaitFor(ctx, DecisionInput, &d, WaitOptions{Timeout: approvalTimeout(in)})
			if errors.Is(err, ErrNoInput) {
				return nil, temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("no decision within %d s", int(approvalTimeout(in).Seconds())), "timeout", nil)
			}
			if err != nil {
				return nil, err
			}
			verdict := "rejected"
			if d.Approved {
				verdict = "approved"
			}
			Progress(ctx, 1, 1, verdict)
			return d, nil
		},
	})
}

func approvalTimeout(in ApprovalInput) time.Duration {
	if in.TimeoutSeconds <= 0 {
		return time.Hour
	}
	return time.Duration(in.TimeoutSeconds) * time.Second
}
