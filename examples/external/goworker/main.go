// Command goworker serves jobgate's external kind "report.build"
// (examples/external/kinds.json) with nothing but the Temporal Go SDK: no
// jobgate package. It follows the conventions of docs/kinds.md, "External
// kinds": the job's input is the workflow's argument and its result the
// job's result; the memo fields "progress" and "waitingFor" report progress
// and waits; the input "approve" arrives as an Update of that name, whose
// validator rejects with type "input-rejected" (jobgate's 422).
//
//	TEMPORAL_ADDRESS=localhost:7233 TASK_QUEUE=reports go run ./examples/external/goworker
package main

import (
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Input is the job's input, as the kind's inputSchema allows it.
type Input struct {
	Pages    int  `json:"pages"`
	Approval bool `json:"approval"`
	Fail     bool `json:"fail"`
}

// Approval is the body of POST /v1/jobs/{id}/inputs/approve.
type Approval struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

// Report is the job's result.
type Report struct {
	Pages      int    `json:"pages"`
	ApprovedBy string `json:"approvedBy,omitempty"`
	// URL is where a real worker would have written the file: results
	// stay small (a workflow's result is at most ~2 MB).
	URL string `json:"url"`
}

// progress publishes the job's progress in the memo field jobgate reads.
func progress(ctx workflow.Context, current, total int, message string) {
	_ = workflow.UpsertMemo(ctx, map[string]any{
		"progress": map[string]any{"current": current, "total": total, "message": message},
	})
}

// BuildReport is the kind's workflow.
func BuildReport(ctx workflow.Context, in Input) (Report, error) {
	report := Report{Pages: in.Pages}
	if in.Approval {
		var approval *Approval
		err := workflow.SetUpdateHandlerWithOptions(ctx, "approve",
			func(ctx workflow.Context, a Approval) (string, error) {
				approval = &a
				return "approved", nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a Approval) error {
				if approval != nil {
					return temporal.NewApplicationError("already approved", "not-waiting")
				}
				if strings.TrimSpace(a.By) == "" {
					// jobgate answers this type with 422.
					return temporal.NewApplicationError("an approval needs the approver's name in \"by\"", "input-rejected")
				}
				return nil
			}})
		if err != nil {
			return report, err
		}
		progress(ctx, 0, in.Pages, "waiting for approval")
		_ = workflow.UpsertMemo(ctx, map[string]any{"waitingFor": []string{"approve"}})
		if err := workflow.Await(ctx, func() bool { return approval != nil }); err != nil {
			return report, err
		}
		_ = workflow.UpsertMemo(ctx, map[string]any{"waitingFor": []string{}})
		report.ApprovedBy = approval.By
	}
	for page := 1; page <= in.Pages; page++ {
		progress(ctx, page-1, in.Pages, fmt.Sprintf("writing page %d of %d", page, in.Pages))
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			// Canceled (DELETE /v1/jobs/{id}): say so, and end canceled.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			progress(dctx, page-1, in.Pages, fmt.Sprintf("canceled after %d pages", page-1))
			return report, err
		}
		if in.Fail {
			return report, temporal.NewNonRetryableApplicationError(fmt.Sprintf("page %d could not be written", page), "report-failed", nil)
		}
	}
	progress(ctx, in.Pages, in.Pages, "done")
	report.URL = "https://reports.example/" + workflow.GetInfo(ctx).WorkflowExecution.ID + ".pdf"
	return report, nil
}

func main() {
	address := env("TEMPORAL_ADDRESS", "localhost:7233")
	c, err := client.Dial(client.Options{HostPort: address, Namespace: env("TEMPORAL_NAMESPACE", "default")})
	if err != nil {
		log.Fatalf("connect to Temporal at %s: %v", address, err)
	}
	defer c.Close()
	w := worker.New(c, env("TASK_QUEUE", "reports"), worker.Options{})
	w.RegisterWorkflowWithOptions(BuildReport, workflow.RegisterOptions{Name: "BuildReport"})
	// Stops on SIGINT or SIGTERM, telling Temporal at once.
	if err := w.Run(worker.InterruptCh()); err != nil {
		log.Fatal(err)
	}
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
