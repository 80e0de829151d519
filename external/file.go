// Package external is how jobgate runs kinds served by Temporal workers it
// does not contain, in any language: the kinds file (JOBGATE_KINDS_FILE)
// that declares them, the descriptor the engine starts their workflows
// from, and the small jobgate workflow that delivers their webhooks.
//
// The conventions such a worker follows are in docs/kinds.md, "External
// kinds": the job's input is the workflow's single JSON argument, its
// result the job's result; the memo fields "progress" and "waitingFor"
// report progress and waits; an input arrives as an Update named after it.
package external

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// Workflow is what job.Kind.Workflow holds for an external kind: the
// workflow type to start, and the task queue its workers poll.
type Workflow struct {
	// Type is the workflow type ("resizeImage").
	Type string
	// TaskQueue is the task queue its workers poll ("media").
	TaskQueue string
}

// Of returns the external workflow of kind k, if k is an external kind.
func Of(k job.Kind) (*Workflow, bool) {
	w, ok := k.Workflow.(*Workflow)
	return w, ok
}

// file is the kinds file's JSON.
type file struct {
	Kinds []json.RawMessage `json:"kinds"`
}

// declaration is one kind of the file.
type declaration struct {
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	InputSchema     json.RawMessage `json:"inputSchema"`
	WorkflowType    string          `json:"workflowType"`
	TaskQueue       string          `json:"taskQueue"`
	ExpectedSeconds *float64        `json:"expectedSeconds"`
	TimeoutSeconds  *float64        `json:"timeoutSeconds"`
	Inputs          []job.Input     `json:"inputs"`
}

// DefaultExpected is an external kind's expected duration when the file
// gives no expectedSeconds.
const DefaultExpected = 10 * time.Second

// Load reads the kinds file at path and returns its kinds. taken are the
// kinds already registered (the built-in ones and the binary's own), whose
// names the file cannot take; ownQueue is jobgate's own task queue, which
// no external kind may share (jobgate's workers would take its tasks).
// Every error names the file, the kind and the field, and stops start-up.
func Load(path string, taken []job.Kind, ownQueue string) ([]job.Kind, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kinds file %s (JOBGATE_KINDS_FILE): %w", path, err)
	}
	return Parse(path, data, taken, ownQueue)
}

// Parse is Load on the file's content; source names it in errors.
func Parse(source string, data []byte, taken []job.Kind, ownQueue string) ([]job.Kind, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("kinds file %s: "+format, append([]any{source}, args...)...)
	}
	var f file
	if err := decodeStrict(data, &f); err != nil {
		return nil, fail("%s", describe(data, err))
	}
	if len(f.Kinds) == 0 {
		return nil, fail(`field "kinds": declares no kind; give at least one, or unset JOBGATE_KINDS_FILE`)
	}
	names := map[string]string{}
	for _, k := range taken {
		names[k.Name] = "a built-in kind"
	}
	kinds := make([]job.Kind, 0, len(f.Kinds))
	for i, raw := range f.Kinds {
		var d declaration
		if err := decodeStrict(raw, &d); err != nil {
			// Name the kind if its name reads at all.
			var named struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(raw, &named)
			return nil, fail("%s: %s", which(i, named.Name), fieldError(err))
		}
		k, err := d.kind(ownQueue)
		if err != nil {
			return nil, fail("%s: %v", which(i, d.Name), err)
		}
		if was, dup := names[k.Name]; dup {
			return nil, fail(`%s: field "name": %q is already %s; choose another name`, which(i, d.Name), k.Name, was)
		}
		names[k.Name] = "declared earlier in this file"
		kinds = append(kinds, k)
	}
	return kinds, nil
}

func which(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("kinds[%d]", i)
	}
	return fmt.Sprintf("kinds[%d] (%q)", i, name)
}

// reservedTypes are jobgate's own workflow types, which an external kind
// cannot name.
var reservedTypes = map[string]bool{
	workflows.JobWorkflowName:     true,
	workflows.WebhookWorkflowName: true,
	workflows.CleanupWorkflowName: true,
	WatchWorkflowName:             true,
}

// kind checks a declaration and builds its job.Kind.
func (d declaration) kind(ownQueue string) (job.Kind, error) {
	switch {
	case strings.TrimSpace(d.Name) == "":
		return job.Kind{}, errors.New(`field "name" is missing`)
	case strings.TrimSpace(d.WorkflowType) == "":
		return job.Kind{}, errors.New(`field "workflowType" is missing: name the workflow type its workers register`)
	case reservedTypes[d.WorkflowType]:
		return job.Kind{}, fmt.Errorf(`field "workflowType": %q is one of jobgate's own workflow types; choose another`, d.WorkflowType)
	case strings.TrimSpace(d.TaskQueue) == "":
		return job.Kind{}, errors.New(`field "taskQueue" is missing: name the task queue its workers poll`)
	case ownQueue != "" && d.TaskQueue == ownQueue:
		return job.Kind{}, fmt.Errorf(`field "taskQueue": %q is jobgate's own task queue (JOBGATE_TASK_QUEUE), whose workers cannot run this kind; give it a queue of its own`, d.TaskQueue)
	}
	expected := DefaultExpected
	if d.ExpectedSeconds != nil {
		s, err := seconds("expectedSeconds", *d.ExpectedSeconds)
		if err != nil {
			return job.Kind{}, err
		}
		expected = s
	}
	var timeout time.Duration
	if d.TimeoutSeconds != nil {
		s, err := seconds("timeoutSeconds", *d.TimeoutSeconds)
		if err != nil {
			return job.Kind{}, err
		}
		if s == 0 {
			return job.Kind{}, errors.New(`field "timeoutSeconds" must be over 0 (leave it out for expectedSeconds plus an hour)`)
		}
		if s < expected {
			return job.Kind{}, fmt.Errorf(`field "timeoutSeconds" (%v) is shorter than "expectedSeconds" (%v)`, s.Seconds(), expected.Seconds())
		}
		timeout = s
	} else {
		timeout = expected + time.Hour
	}
	k := job.Kind{
		Name:             d.Name,
		Description:      d.Description,
		InputSchema:      d.InputSchema,
		ExpectedDuration: "about " + strconv.FormatFloat(expected.Seconds(), 'f', -1, 64) + " s",
		Inputs:           d.Inputs,
		Validate:         func(json.RawMessage) []job.FieldError { return nil },
		Plan:             func(json.RawMessage) job.Plan { return job.Plan{Expected: expected, Timeout: timeout} },
		Workflow:         &Workflow{Type: d.WorkflowType, TaskQueue: d.TaskQueue},
	}
	// The registry compiles the schemas as it will at start-up; checked
	// here one field at a time, so that the error names the field.
	bare := job.Kind{Name: k.Name, Validate: k.Validate, Plan: k.Plan, Workflow: k.Workflow}
	if strings.HasPrefix(k.Name, job.ReservedPrefix) {
		return job.Kind{}, fmt.Errorf(`field "name": names starting with %q are jobgate's own; choose another`, job.ReservedPrefix)
	}
	withSchema := bare
	withSchema.InputSchema = k.InputSchema
	if _, err := job.NewRegistry(withSchema); err != nil {
		return job.Kind{}, fmt.Errorf(`field "inputSchema": %v`, err)
	}
	for i, in := range d.Inputs {
		one := bare
		one.Inputs = []job.Input{in}
		if _, err := job.NewRegistry(one); err != nil {
			return job.Kind{}, fmt.Errorf(`field "inputs[%d]": %v`, i, err)
		}
	}
	if _, err := job.NewRegistry(k); err != nil {
		return job.Kind{}, fmt.Errorf(`field "inputs": %v`, err)
	}
	return k, nil
}

// maxSeconds bounds expectedSeconds and timeoutSeconds (a year).
const maxSeconds = 366 * 24 * 3600

func seconds(field string, v float64) (time.Duration, error) {
	if math.IsNaN(v) || v < 0 || v > maxSeconds {
		return 0, fmt.Errorf("field %q must be between 0 and %d seconds, not %v", field, maxSeconds, v)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields and
// trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the top-level object")
	}
	return nil
}

// fieldError says which field of a kind did not decode.
func fieldError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %q must be %s", typ.Field, jsonType(typ.Type.Kind().String()))
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return "unknown field " + name + " (a kind has name, description, inputSchema, workflowType, taskQueue, expectedSeconds, timeoutSeconds and inputs; an input has name, description and schema)"
	}
	return msg
}

func jsonType(goKind string) string {
	switch goKind {
	case "float64", "int", "int64":
		return "a number"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	}
	return "an object"
}

// describe says where a syntax error is, by line and column.
func describe(data []byte, err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		line, col := position(data, syntax.Offset)
		return fmt.Sprintf("not valid JSON at line %d, column %d: %v", line, col, syntax)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		line, col := position(data, typ.Offset)
		return fmt.Sprintf("line %d, column %d: field %q must be %s", line, col, typ.Field, jsonType(typ.Type.Kind().String()))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func position(data []byte, offset int64) (line, col int) {
	line, col = 1, 1
	for i := 0; i < int(offset) && i < len(data); i++ {
		if data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
