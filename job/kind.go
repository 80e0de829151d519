package job

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/message"
)

// Kind is a kind of work jobgate runs: a name, a description, rules for its
// input, a plan for how long it takes and how it is retried, and the Go code
// that does it. Built-in kinds and users' own kinds are all Kinds; build one
// with Define.
type Kind struct {
	// Name identifies the kind in requests ("sleep", "http.request").
	Name string
	// Description says in one sentence what the kind does.
	Description string
	// InputSchema is the JSON Schema (2020-12 unless it says otherwise) of
	// the kind's input, published to clients and enforced before a job is
	// accepted. It must be self-contained. Empty means any object.
	InputSchema json.RawMessage
	// ExpectedDuration tells clients, in words, how long a job of this kind
	// takes ("the requested seconds", "about 2 s").
	ExpectedDuration string
	// KeepsScratch says the work keeps data between attempts under
	// work/<job id>/ in blob storage (as batch.http's checkpoints do); the
	// job's workflow deletes it once the job has ended for good, when no
	// attempt can still need it.
	KeepsScratch bool
	// Validate checks an input that satisfies InputSchema before a job is
	// accepted, for the rules a schema cannot say; it returns the problems
	// found, none when the input is valid.
	Validate func(input json.RawMessage) []FieldError
	// Plan says, for a valid input, how long the work is expected to take,
	// how long one attempt may take at most, and how failures are retried.
	Plan func(input json.RawMessage) Plan
	// Run does the work. It must return promptly once ctx is done (that is
	// how cancellation reaches it), report progress through report, and
	// return a JSON-encodable result or a *File. Errors are retried per the
	// plan unless wrapped with Permanent. InfoFrom(ctx) tells which job it
	// runs; Stopping(ctx) tells when its worker shuts down.
	Run func(ctx context.Context, input json.RawMessage, report Reporter) (any, error)
	// Inputs are the named inputs a job of this kind may wait for while it
	// runs (POST /v1/jobs/{id}/inputs/{name}); each body is checked against
	// its schema before it reaches the job.
	Inputs []Input
	// ValidateWith checks what an input says of other kinds (a pipeline's
	// steps) with the whole registry at hand, after Validate; nil skips it.
	ValidateWith func(r *Registry, input json.RawMessage) []FieldError
	// Workflow, when set, makes this a workflow kind: the job runs a
	// Temporal workflow rather than Run as one activity. It is opaque here
	// (package job knows no Temporal); flow.Define sets it, and Run is then
	// nil.
	Workflow any
}

// Input is a named input a running job can wait for: an approval, a
// document, another system's answer.
type Input struct {
	// Name identifies the input in its URL (/v1/jobs/{id}/inputs/{name}).
	Name string `json:"name"`
	// Description says what the input is for.
	Description string `json:"description,omitempty"`
	// Schema is the JSON Schema of the input's body; empty means any
	// object.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// IsWorkflow reports whether k is a workflow kind (see Kind.Workflow).
func (k Kind) IsWorkflow() bool { return k.Workflow != nil }

// Plan is how a job of some kind is run.
type Plan struct {
	// Expected is how long the work usually takes; it feeds Retry-After and
	// estimatedCompletion. Zero means "a moment".
	Expected time.Duration
	// Timeout bounds one attempt of the work. Zero means Expected plus a
	// minute.
	Timeout time.Duration
	// Retry says how failed attempts are retried.
	Retry RetryPolicy
	// Local says the work may run as a Temporal local activity, inside the
	// job's first workflow task on the worker that takes it: no activity
	// task, no second workflow task, about half the history of a job. Only
	// for work that ends well within a second, reports no progress while
	// it runs (a local activity cannot heartbeat) and has nothing for a
	// cancellation to interrupt (a cancel reaches the job once the work
	// has ended). The job reads queued until it ends, and its retries are
	// the worker's. See docs/kinds.md.
	Local bool
}

// RetryPolicy says how failed attempts of work are retried, with
// exponential backoff. Zero fields take the defaults shown.
type RetryPolicy struct {
	// InitialInterval is the wait before the first retry (default 1s).
	InitialInterval time.Duration
	// BackoffCoefficient multiplies the wait after each retry (default 2).
	BackoffCoefficient float64
	// MaximumInterval caps the wait between retries (default 1m).
	MaximumInterval time.Duration
	// MaximumAttempts caps the attempts, the first included (default 1: no
	// retry).
	MaximumAttempts int
}

// Reporter receives a running job's progress. It is cheap to call often:
// progress is sent to the job's record at most about once a second.
type Reporter func(Progress)

// PermanentError marks an error that no retry can fix (a bad URL, a refused
// destination), so the job fails at once.
type PermanentError struct {
	// Type is a short machine-readable reason, such as "invalid-url".
	Type string
	Err  error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the job fails without further attempts.
func Permanent(typ string, err error) error {
	return &PermanentError{Type: typ, Err: err}
}

// KindSpec is the typed description of a kind, turned into a Kind by
// Define. In is the kind's input type, decoded strictly from JSON (unknown
// fields are errors).
type KindSpec[In any] struct {
	Name             string
	Description      string
	InputSchema      string
	ExpectedDuration string
	KeepsScratch     bool
	// Validate checks the decoded input; nil means every decoded value is
	// valid.
	Validate func(in In) []FieldError
	// Plan derives the plan from the decoded input.
	Plan func(in In) Plan
	// Run does the work on the decoded input; nil for a workflow kind
	// (flow.Define sets its workflow instead).
	Run func(ctx context.Context, in In, report Reporter) (any, error)
	// Inputs are the named inputs a job of the kind may wait for.
	Inputs []Input
}

// Define builds a Kind from a typed spec: it decodes the input into In
// (rejecting unknown fields and trailing data) before Validate, Plan and
// Run see it.
func Define[In any](spec KindSpec[In]) Kind {
	decode := DecodeStrict[In]
	k := Kind{
		Name:             spec.Name,
		Description:      spec.Description,
		InputSchema:      json.RawMessage(spec.InputSchema),
		ExpectedDuration: spec.ExpectedDuration,
		KeepsScratch:     spec.KeepsScratch,
		Inputs:           spec.Inputs,
		Validate: func(raw json.RawMessage) []FieldError {
			in, err := decode(raw)
			if err != nil {
				return []FieldError{decodeFieldError(err)}
			}
			if spec.Validate == nil {
				return nil
			}
			return spec.Validate(in)
		},
		Plan: func(raw json.RawMessage) Plan {
			in, _ := decode(raw)
			if spec.Plan == nil {
				return Plan{}
			}
			return spec.Plan(in)
		},
	}
	if spec.Run != nil {
		k.Run = func(ctx context.Context, raw json.RawMessage, report Reporter) (any, error) {
			in, err := decode(raw)
			if err != nil {
				return nil, Permanent("invalid-input", fmt.Errorf("decode input: %w", err))
			}
			return spec.Run(ctx, in, report)
		}
	}
	return k
}

// DecodeStrict decodes a JSON input into a T as kinds see it: empty is
// {}, unknown fields and data after the value are errors.
func DecodeStrict[T any](raw json.RawMessage) (T, error) {
	var v T
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return v, errors.New("unexpected data after the input object")
	}
	return v, nil
}

// decodeFieldError turns a JSON decoding error into a field error pointing
// at the offending field where the decoder says which one it is.
func decodeFieldError(err error) FieldError {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := "/input"
		if typeErr.Field != "" {
			field += "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		}
		return FieldError{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return FieldError{Field: "/input/" + strings.Trim(name, `"`), Message: "unknown field"}
	}
	return FieldError{Field: "/input", Message: strings.TrimPrefix(msg, "json: ")}
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	}
	return "an object"
}

// ReservedPrefix starts the names of jobgate's own activities, which no
// kind may take.
const ReservedPrefix = "jobgate."

// Registry is the set of kinds a deployment runs, with their compiled
// input schemas.
type Registry struct {
	kinds   map[string]Kind
	schemas map[string]*jsonschema.Schema
	// inputs are the compiled schemas of kinds' inputs, by kind and name.
	inputs  map[string]map[string]*jsonschema.Schema
	printer *message.Printer
}

// NewRegistry returns a registry of the given kinds, compiling each kind's
// InputSchema once. It returns an error for a kind without a name or Run
// function, a name used twice or starting with ReservedPrefix, or an InputSchema that is not a valid,
// self-contained JSON Schema.
func NewRegistry(kinds ...Kind) (*Registry, error) {
	r := &Registry{kinds: make(map[string]Kind, len(kinds)), schemas: map[string]*jsonschema.Schema{},
		inputs: map[string]map[string]*jsonschema.Schema{}, printer: newPrinter()}
	for _, k := range kinds {
		switch {
		case k.Name == "":
			return nil, errors.New("job kind without a name")
		case (k.Run == nil && k.Workflow == nil) || k.Validate == nil || k.Plan == nil:
			return nil, fmt.Errorf("job kind %q: build it with job.Define (or flow.Define for a workflow kind)", k.Name)
		case strings.HasPrefix(k.Name, ReservedPrefix):
			return nil, fmt.Errorf("job kind %q: names starting with %q are jobgate's own; choose another", k.Name, ReservedPrefix)
		}
		if _, dup := r.kinds[k.Name]; dup {
			return nil, fmt.Errorf("job kind %q registered twice", k.Name)
		}
		if len(bytes.TrimSpace(k.InputSchema)) > 0 {
			s, err := compileSchema(k.Name, k.InputSchema)
			if err != nil {
				return nil, err
			}
			r.schemas[k.Name] = s
		}
		inputs := map[string]*jsonschema.Schema{}
		for _, in := range k.Inputs {
			if !validInputName(in.Name) {
				return nil, fmt.Errorf("job kind %q: input name %q: use 1-64 letters, digits, '-', '_' or '.'", k.Name, in.Name)
			}
			if _, dup := inputs[in.Name]; dup {
				return nil, fmt.Errorf("job kind %q: input %q declared twice", k.Name, in.Name)
			}
			inputs[in.Name] = nil
			if len(bytes.TrimSpace(in.Schema)) > 0 {
				s, err := compileSchema(k.Name+"/inputs/"+in.Name, in.Schema)
				if err != nil {
					return nil, err
				}
				inputs[in.Name] = s
			}
		}
		r.inputs[k.Name] = inputs
		r.kinds[k.Name] = k
	}
	return r, nil
}

func validInputName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CheckInput validates the body of input name of a job of kind against
// the input's schema. Errors: *UnknownInputError for a kind without that
// input (or an unknown kind), *ValidationError with fields under "/" (the
// body itself).
func (r *Registry) CheckInput(kind, name string, body json.RawMessage) error {
	inputs, ok := r.inputs[kind]
	if !ok {
		return &UnknownInputError{Kind: kind, Input: name}
	}
	s, ok := inputs[name]
	if !ok {
		known := make([]string, 0, len(inputs))
		for _, in := range r.kinds[kind].Inputs {
			known = append(known, in.Name)
		}
		return &UnknownInputError{Kind: kind, Input: name, Known: known}
	}
	if s == nil {
		return nil
	}
	if errs := checkSchema(s, body, r.printer); len(errs) > 0 {
		for i := range errs {
			errs[i].Field = strings.TrimPrefix(errs[i].Field, "/input")
			if errs[i].Field == "" {
				errs[i].Field = "/"
			}
		}
		return &ValidationError{Kind: kind, Input: name, Fields: errs}
	}
	return nil
}

// Under returns errs with their fields moved under prefix: "/input/x"
// becomes prefix+"/x". A pipeline reports its steps' problems so.
func Under(prefix string, errs []FieldError) []FieldError {
	out := make([]FieldError, len(errs))
	for i, e := range errs {
		out[i] = FieldError{Field: prefix + strings.TrimPrefix(e.Field, "/input"), Message: e.Message}
	}
	return out
}

// Kinds returns the registered kinds, sorted by name.
func (r *Registry) Kinds() []Kind {
	out := make([]Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the kind named name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Check returns the kind named name after validating input against it:
// first against the kind's InputSchema, then, if the schema holds, with the
// kind's Validate for the rules a schema cannot say. Errors:
// *UnknownKindError, *ValidationError.
func (r *Registry) Check(name string, input json.RawMessage) (Kind, error) {
	k, ok := r.kinds[name]
	if !ok {
		known := make([]string, 0, len(r.kinds))
		for _, k := range r.Kinds() {
			known = append(known, k.Name)
		}
		return Kind{}, &UnknownKindError{Kind: name, Known: known}
	}
	if s, ok := r.schemas[name]; ok {
		if errs := checkSchema(s, input, r.printer); len(errs) > 0 {
			return Kind{}, &ValidationError{Kind: name, Fields: errs}
		}
	}
	if errs := k.Validate(input); len(errs) > 0 {
		return Kind{}, &ValidationError{Kind: name, Fields: errs}
	}
	if k.ValidateWith != nil {
		if errs := k.ValidateWith(r, input); len(errs) > 0 {
			return Kind{}, &ValidationError{Kind: name, Fields: errs}
		}
	}
	return k, nil
}
