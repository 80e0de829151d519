package activities

import (
	"archive/zip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jobgate/jobgate/job"
)

// ExportInput is the input of the export kind.
type ExportInput struct {
	// Format is csv or ndjson; required.
	Format string `json:"format"`
	// Zip puts the file in a zip archive.
	Zip bool `json:"zip,omitempty"`
	// Filter selects the jobs to export; empty exports all of them.
	Filter ExportFilter `json:"filter,omitzero"`
}

// ExportFilter selects the jobs an export writes.
type ExportFilter struct {
	// State keeps jobs in that state.
	State job.State `json:"state,omitempty"`
	// Kind keeps jobs of that kind.
	Kind string `json:"kind,omitempty"`
	// CreatedFrom keeps jobs created at or after it.
	CreatedFrom *time.Time `json:"createdFrom,omitempty"`
	// CreatedTo keeps jobs created before it.
	CreatedTo *time.Time `json:"createdTo,omitempty"`
}

// ExportRecord is one exported job: a CSV row or an NDJSON line.
type ExportRecord struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	State       job.State  `json:"state"`
	CreatedAt   time.Time  `json:"createdAt"`
	CompletedAt *time.Time `json:"completedAt"`
}

// exportColumns are the CSV header, in the order of ExportRecord.
var exportColumns = []string{"id", "kind", "state", "createdAt", "completedAt"}

// exportPage is how many jobs an export reads from the listing at a time.
const exportPage = 100

// Export is the export kind: it writes the tenant's jobs matching a filter
// (newest first, as listed) as CSV or NDJSON, optionally zipped, streamed to
// blob storage; the result is the file. jobs lists them.
func Export(jobs job.Lister) job.Kind {
	return job.Define(job.KindSpec[ExportInput]{
		Name:             "export",
		Description:      "Exports your jobs matching a filter as a CSV or NDJSON file (optionally zipped); the result is the download.",
		ExpectedDuration: "a few seconds; about a second per 1000 jobs",
		InputSchema: `{"type":"object","additionalProperties":false,"required":["format"],"properties":{` +
			`"format":{"enum":["csv","ndjson"]},` +
			`"zip":{"type":"boolean","default":false},` +
			`"filter":{"type":"object","additionalProperties":false,"properties":{` +
			`"state":{"enum":["queued","running","canceling","succeeded","failed","canceled"]},` +
			`"kind":{"type":"string","minLength":1,"maxLength":200},` +
			`"createdFrom":{"type":"string","format":"date-time"},` +
			`"createdTo":{"type":"string","format":"date-time"}}}}}`,
		Validate: func(in ExportInput) []job.FieldError {
			var errs []job.FieldError
			if in.Format != "csv" && in.Format != "ndjson" {
				errs = append(errs, job.FieldError{Field: "/input/format", Message: "must be csv or ndjson"})
			}
			f := in.Filter
			if f.CreatedFrom != nil && f.CreatedTo != nil && !f.CreatedFrom.Before(*f.CreatedTo) {
				errs = append(errs, job.FieldError{Field: "/input/filter/createdTo", Message: "must be after createdFrom"})
			}
			return errs
		},
		Plan: func(ExportInput) job.Plan {
			return job.Plan{Expected: 3 * time.Second, Timeout: 30 * time.Minute, Retry: job.RetryPolicy{MaximumAttempts: 3}}
		},
		Run: func(ctx context.Context, in ExportInput, report job.Reporter) (any, error) {
			info, _ := job.InfoFrom(ctx)
			switch {
			case jobs == nil:
				return nil, errorf("export-unavailable", "this worker cannot list jobs; it was started without a job lister")
			case info.Tenant == "":
				return nil, errorf("export-unavailable", "the job does not say its tenant (it was accepted by an older jobgate); submit it again")
			}
			return exportFile(jobs, info, in, report), nil
		},
	})
}

func exportFile(jobs job.Lister, info job.Info, in ExportInput, report job.Reporter) *job.File {
	name, contentType := "jobs-"+info.ID+".csv", "text/csv; charset=utf-8"
	if in.Format == "ndjson" {
		name, contentType = "jobs-"+info.ID+".ndjson", "application/x-ndjson"
	}
	inner := name
	if in.Zip {
		name, contentType = name+".zip", "application/zip"
	}
	return &job.File{Name: name, ContentType: contentType, Write: func(ctx context.Context, w io.Writer) error {
		if !in.Zip {
			return writeExport(ctx, jobs, info, in, w, report)
		}
		zw := zip.NewWriter(w)
		entry, err := zw.CreateHeader(&zip.FileHeader{Name: inner, Method: zip.Deflate, Modified: time.Now().UTC()})
		if err != nil {
			return err
		}
		if err := writeExport(ctx, jobs, info, in, entry, report); err != nil {
			return err
		}
		return zw.Close()
	}}
}

// writeExport pages through the listing and writes each job as it comes.
func writeExport(ctx context.Context, jobs job.Lister, info job.Info, in ExportInput, w io.Writer, report job.Reporter) error {
	f := job.ListFilter{State: in.Filter.State, Kind: in.Filter.Kind, Limit: exportPage}
	if in.Filter.CreatedFrom != nil {
		f.CreatedFrom = *in.Filter.CreatedFrom
	}
	if in.Filter.CreatedTo != nil {
		f.CreatedTo = *in.Filter.CreatedTo
	}
	var write func(ExportRecord) error
	var flush func() error
	switch in.Format {
	case "ndjson":
		enc := json.NewEncoder(w)
		write = func(r ExportRecord) error { return enc.Encode(r) }
		flush = func() error { return nil }
	default:
		cw := csv.NewWriter(w)
		if err := cw.Write(exportColumns); err != nil {
			return err
		}
		write = func(r ExportRecord) error {
			completed := ""
			if r.CompletedAt != nil {
				completed = r.CompletedAt.Format(time.RFC3339Nano)
			}
			return cw.Write([]string{r.ID, r.Kind, string(r.State), r.CreatedAt.Format(time.RFC3339Nano), completed})
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	}
	n := 0
	for {
		page, err := jobs.List(ctx, info.Tenant, f)
		if err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for _, j := range page.Jobs {
			if j.ID == info.ID {
				continue // the export itself
			}
			if err := write(exportRecord(j)); err != nil {
				return err
			}
			n++
		}
		if err := flush(); err != nil {
			return err
		}
		report(job.Progress{Current: int64(n), Message: fmt.Sprintf("exported %d jobs", n)})
		if page.NextCursor == "" {
			return nil
		}
		f.Cursor = page.NextCursor
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func exportRecord(j *job.Job) ExportRecord {
	r := ExportRecord{ID: j.ID, Kind: j.Kind, State: j.State, CreatedAt: j.CreatedAt.UTC()}
	if !j.CompletedAt.IsZero() {
		t := j.CompletedAt.UTC()
		r.CompletedAt = &t
	}
	return r
}
