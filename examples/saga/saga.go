// Package saga is an example of a workflow kind: "order" is an order saga
// that reserves the items in the inventory, charges the customer, waits
// for a manager's approval (the input "approval") and ships. When the job
// is canceled (DELETE) or fails (a rejection, a step that fails, no
// decision in time), the steps already done are undone in reverse order:
// the payment is refunded, then the reservation released.
//
// The kind is ordinary Temporal workflow code (workflow.go) written with
// jobgate's flow helpers; its activities are methods on Activities, which
// holds the systems they act on (activities.go). cmd/jobgate-saga is
// jobgate with the kind added.
package saga

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
)

// Order is the input of an order job.
type Order struct {
	// Customer is who pays: an account of Payments.
	Customer string `json:"customer"`
	// Items are what is ordered, each SKU once.
	Items []Item `json:"items"`
	// Amount is the total charged, in cents.
	Amount int64 `json:"amount"`
	// ApprovalSeconds bounds the wait for the manager's decision (default
	// one day); with no decision in time the order fails and is undone.
	ApprovalSeconds int `json:"approvalSeconds,omitempty"`
}

// Item is a quantity of one SKU.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Result is the result of an order that went through: what each step
// made, and the manager's decision.
type Result struct {
	Reservation string        `json:"reservation"`
	Payment     string        `json:"payment"`
	Tracking    string        `json:"tracking"`
	Approval    flow.Decision `json:"approval"`
}

// ApprovalInput is the name of the input an order waits for: the
// manager's decision, {"approved": bool, "comment": string}.
const ApprovalInput = "approval"

const orderSchema = `{
  "type": "object",
  "required": ["customer", "items", "amount"],
  "properties": {
    "customer": {"type": "string", "minLength": 1, "maxLength": 100},
    "items": {
      "type": "array", "minItems": 1, "maxItems": 100,
      "items": {
        "type": "object",
        "required": ["sku", "quantity"],
        "properties": {
          "sku": {"type": "string", "minLength": 1, "maxLength": 100},
          "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}
        },
        "additionalProperties": false
      }
    },
    "amount": {"type": "integer", "minimum": 1, "description": "the total charged, in cents"},
    "approvalSeconds": {"type": "integer", "minimum": 1, "maximum": 2592000}
  },
  "additionalProperties": false
}`

const approvalSchema = `{
  "type": "object",
  "required": ["approved"],
  "properties": {
    "approved": {"type": "boolean"},
    "comment": {"type": "string", "maxLength": 1000}
  },
  "additionalProperties": false
}`

// Kind returns the order kind, whose steps act through acts. The same
// acts (one per worker process) serve every order job.
func Kind(acts *Activities) job.Kind {
	return flow.Define(flow.Spec[Order]{
		Name:             "order",
		Description:      "An order saga: reserve the items, charge the customer, wait for a manager's approval, ship; undone in reverse when canceled or failed.",
		InputSchema:      orderSchema,
		ExpectedDuration: "a few seconds, plus the wait for the manager's approval",
		Validate:         validate,
		Plan: func(o Order) job.Plan {
			// Expected covers the automatic steps: while the order waits for
			// its approval, its status says nobody can tell when it ends.
			return job.Plan{Expected: 10 * time.Second, Timeout: approvalTimeout(o) + 10*time.Minute}
		},
		Inputs: []job.Input{{
			Name:        ApprovalInput,
			Description: "The manager's decision: approved or not; a rejection says why in comment.",
			Schema:      json.RawMessage(approvalSchema),
		}},
		Workflow:   Workflow,
		Activities: []any{acts},
	})
}

// validate checks what the schema cannot say.
func validate(o Order) []job.FieldError {
	var errs []job.FieldError
	seen := map[string]bool{}
	for i, it := range o.Items {
		if seen[it.SKU] {
			errs = append(errs, job.FieldError{Field: fmt.Sprintf("/input/items/%d/sku", i), Message: "is ordered twice: give each SKU once, with its whole quantity"})
		}
		seen[it.SKU] = true
	}
	return errs
}

func approvalTimeout(o Order) time.Duration {
	if o.ApprovalSeconds <= 0 {
		return 24 * time.Hour
	}
	return time.Duration(o.ApprovalSeconds) * time.Second
}
