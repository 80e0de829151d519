package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/external"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// PipelineInput is the input of a pipeline job: a graph of steps.
type PipelineInput struct {
	Steps []PipelineStep `json:"steps"`
}

// PipelineStep is one step of a pipeline: a child job of Kind with Input,
// started once every step in After has succeeded.
type PipelineStep struct {
	ID    string          `json:"id"`
	Kind  string          `json:"kind"`
	Input json.RawMessage `json:"input,omitempty"`
	After []string        `json:"after,omitempty"`
}

// PipelineResult is a pipeline's result: every step's job and outcome.
type PipelineResult struct {
	Steps []PipelineStepResult `json:"steps"`
}

// PipelineStepResult is how one step of a pipeline ended.
type PipelineStepResult struct {
	ID string `json:"id"`
	// JobID is the step's child job; empty for a step never started.
	JobID string `json:"jobId,omitempty"`
	// State is the child job's final state, or "skipped" for a step never
	// started (an earlier step failed, or the pipeline was canceled).
	State     string `json:"state"`
	ResultURL string `json:"resultUrl,omitempty"`
	Error     string `json:"error,omitempty"`
}

// MaxPipelineDuration bounds a whole pipeline; its steps are bounded by
// their own kinds.
const MaxPipelineDuration = 30 * 24 * time.Hour

// MaxPipelineSteps bounds the steps of one pipeline.
const MaxPipelineSteps = 50

// RefKey marks a reference to an earlier step's result in a step's input:
// an object {"$result": "<step id>", "pointer": "/json/pointer"} anywhere
// in the input is replaced by the value at pointer (RFC 6901; empty or
// absent: the whole result) in that step's JSON result. The step must
// come after the one it names (directly or through other steps). A nested
// pipeline's input is left as it is: references in it name its own steps.
const RefKey = "$result"

const pipelineSchema = `{
  "type": "object",
  "required": ["steps"],
  "properties": {
    "steps": {
      "type": "array", "minItems": 1, "maxItems": 50,
      "items": {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
          "id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
          "kind": {"type": "string", "minLength": 1},
          "input": {},
          "after": {"type": "array", "items": {"type": "string"}, "maxItems": 50}
        },
        "additionalProperties": false
      }
    }
  },
  "additionalProperties": false
}`

// Pipeline is the built-in pipeline kind: a client-submitted graph of
// steps, each a child job of any registered kind, each started as soon as
// the steps it comes after have succeeded. The first failed step fails the
// pipeline and cancels the steps still running; canceling the pipeline
// cancels them all. Progress is steps done of all; the result lists every
// step's job, state and result URL.
func Pipeline() job.Kind {
	k := Define(Spec[PipelineInput]{
		Name:             "pipeline",
		Description:      "Runs a graph of steps, each a child job of any kind, each as soon as the steps it comes after have succeeded.",
		InputSchema:      pipelineSchema,
		ExpectedDuration: "the sum of its steps along the longest path",
		// Each step is bounded by its own kind; the whole only by this.
		Plan:     func(PipelineInput) job.Plan { return job.Plan{Timeout: MaxPipelineDuration} },
		Workflow: runPipeline,
	})
	k.ValidateWith = validatePipeline
	return k
}

// validatePipeline checks a pipeline's graph and its steps' kinds and
// inputs before it is accepted.
func validatePipeline(r *job.Registry, raw json.RawMessage) []job.FieldError {
	in, err := job.DecodeStrict[PipelineInput](raw)
	if err != nil {
		return []job.FieldError{{Field: "/input", Message: err.Error()}}
	}
	return checkGraph(r, in, 1)
}

func checkGraph(r *job.Registry, in PipelineInput, depth int) []job.FieldError {
	var errs []job.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, job.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(in.Steps) == 0 || len(in.Steps) > MaxPipelineSteps {
		add("/input/steps", "a pipeline has 1 to %d steps, not %d", MaxPipelineSteps, len(in.Steps))
		return errs
	}
	index := map[string]int{}
	for i, s := range in.Steps {
		if !validStepID(s.ID) {
			add(stepField(i, "id"), "use 1-64 letters, digits, '_', '.' or '-'")
			continue
		}
		if _, dup := index[s.ID]; dup {
			add(stepField(i, "id"), "step id %q is used twice", s.ID)
			continue
		}
		index[s.ID] = i
	}
	for i, s := range in.Steps {
		for j, a := range s.After {
			switch {
			case a == s.ID:
				add(stepField(i, "after/"+strconv.Itoa(j)), "a step cannot come after itself")
			case !has(index, a):
				add(stepField(i, "after/"+strconv.Itoa(j)), "no step has id %q", a)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if cycle := findCycle(in.Steps, index); cycle != nil {
		add(stepField(index[cycle[0]], "after"), "the steps' order has a cycle: %s", strings.Join(cycle, " → "))
		return errs
	}
	for i, s := range in.Steps {
		k, ok := r.Lookup(s.Kind)
		if !ok {
			add(stepField(i, "kind"), "unknown job kind %q", s.Kind)
			continue
		}
		if _, ext := external.Of(k); ext {
			add(stepField(i, "kind"), "%q is an external kind, which pipeline steps cannot run yet; submit its jobs with POST /v1/jobs", s.Kind)
			continue
		}
		// References inside a nested pipeline are its own steps'.
		var refs []ref
		var err error
		if k.Name != "pipeline" {
			refs, err = findRefs(s.Input)
		}
		if err != nil {
			add(stepField(i, "input"), "%v", err)
			continue
		}
		before := ancestors(in.Steps, index, s.ID)
		for _, ref := range refs {
			if !before[ref.step] {
				add(stepField(i, "input"), "refers to the result of step %q, which it does not come after", ref.step)
			}
		}
		if k.Name == "pipeline" && len(refs) == 0 {
			// Nested pipelines are checked here rather than through the
			// registry, so that their depth is counted.
			if depth+1 > MaxDepth {
				add(stepField(i, "kind"), "pipelines nest at most %d deep", MaxDepth)
				continue
			}
			nested, err := job.DecodeStrict[PipelineInput](s.Input)
			if err != nil {
				add(stepField(i, "input"), "%v", err)
				continue
			}
			errs = append(errs, job.Under(stepField(i, "input"), checkGraph(r, nested, depth+1))...)
			continue
		}
		// A step whose input refers to earlier results is checked when it
		// starts, once the references are resolved.
		if len(refs) == 0 {
			if _, err := r.Check(s.Kind, s.Input); err != nil {
				errs = append(errs, fieldErrors(stepField(i, "input"), err)...)
			}
		}
	}
	return errs
}

func fieldErrors(prefix string, err error) []job.FieldError {
	if verr, ok := err.(*job.ValidationError); ok {
		return job.Under(prefix, verr.Fields)
	}
	return []job.FieldError{{Field: prefix, Message: err.Error()}}
}

func validStepID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func stepField(i int, rest string) string {
	return "/input/steps/" + strconv.Itoa(i) + "/" + rest
}

func has(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// findCycle returns the ids of a cycle in the steps' order, or nil.
func findCycle(steps []PipelineStep, index map[string]int) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make([]int, len(steps))
	var path []string
	var visit func(i int) []string
	visit = func(i int) []string {
		mark[i] = onPath
		path = append(path, steps[i].ID)
		for _, a := range steps[i].After {
			j := index[a]
			switch mark[j] {
			case onPath:
				for k, id := range path {
					if id == a {
						return append(append([]string{}, path[k:]...), a)
					}
				}
			case unseen:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[i] = done
		return nil
	}
	for i := range steps {
		if mark[i] == unseen {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}

// ancestors are the steps id comes after, directly or through others.
func ancestors(steps []PipelineStep, index map[string]int, id string) map[string]bool {
	seen := map[string]bool{}
	stack := append([]string{}, steps[index[id]].After...)
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[a] {
			continue
		}
		seen[a] = true
		stack = append(stack, steps[index[a]].After...)
	}
	return seen
}

type ref struct{ step, pointer string }

// findRefs lists the references to earlier results in a step's input.
func findRefs(input json.RawMessage) ([]ref, error) {
	if len(bytes.TrimSpace(input)) == 0 {
		return nil, nil
	}
	v, err := decodeValue(input)
	if err != nil {
		return nil, err
	}
	var out []ref
	var walk func(v any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case map[string]any:
			if r, ok, err := asRef(t); ok || err != nil {
				if err == nil {
					out = append(out, r)
				}
				return err
			}
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(v)
}

func asRef(m map[string]any) (ref, bool, error) {
	step, ok := m[RefKey]
	if !ok {
		return ref{}, false, nil
	}
	id, ok := step.(string)
	if !ok {
		return ref{}, true, fmt.Errorf("%q must name a step (a string)", RefKey)
	}
	r := ref{step: id}
	for k, v := range m {
		switch k {
		case RefKey:
		case "pointer":
			p, ok := v.(string)
			if !ok || (p != "" && !strings.HasPrefix(p, "/")) {
				return ref{}, true, fmt.Errorf("the pointer of a reference to step %q must be a JSON pointer (\"/a/0/b\")", id)
			}
			r.pointer = p
		default:
			return ref{}, true, fmt.Errorf("a reference to step %q has only %q and \"pointer\", not %q", id, RefKey, k)
		}
	}
	return r, true, nil
}

func decodeValue(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// resolveRefs replaces the references in input with the values they point
// at in results.
func resolveRefs(input json.RawMessage, results map[string]json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(input)) == 0 {
		return input, nil
	}
	v, err := decodeValue(input)
	if err != nil {
		return nil, err
	}
	var resolve func(v any) (any, error)
	resolve = func(v any) (any, error) {
		switch t := v.(type) {
		case map[string]any:
			if r, ok, err := asRef(t); ok || err != nil {
				if err != nil {
					return nil, err
				}
				res, ok := results[r.step]
				if !ok {
					return nil, fmt.Errorf("step %q has no JSON result to refer to", r.step)
				}
				doc, err := decodeValue(res)
				if err != nil {
					return nil, fmt.Errorf("the result of step %q: %v", r.step, err)
				}
				return pointAt(doc, r.pointer, r.step)
			}
			for k, e := range t {
				nv, err := resolve(e)
				if err != nil {
					return nil, err
				}
				t[k] = nv
			}
		case []any:
			for i, e := range t {
				nv, err := resolve(e)
				if err != nil {
					return nil, err
				}
				t[i] = nv
			}
		}
		return v, nil
	}
	out, err := resolve(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// pointAt is the value at JSON pointer p (RFC 6901) in doc.
func pointAt(doc any, p, step string) (any, error) {
	if p == "" {
		return doc, nil
	}
	cur := doc
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch t := cur.(type) {
		case map[string]any:
			v, ok := t[tok]
			if !ok {
				return nil, fmt.Errorf("the result of step %q has nothing at %s", step, p)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(t) {
				return nil, fmt.Errorf("the result of step %q has nothing at %s", step, p)
			}
			cur = t[i]
		default:
			return nil, fmt.Errorf("the result of step %q has nothing at %s", step, p)
		}
	}
	return cur, nil
}

// runPipeline runs the graph: each step as a child job as soon as the
// steps it comes after have succeeded.
func runPipeline(ctx workflow.Context, in PipelineInput) (any, error) {
	n := len(in.Steps)
	results := map[string]json.RawMessage{}
	outcome := make([]PipelineStepResult, n)
	for i, s := range in.Steps {
		outcome[i] = PipelineStepResult{ID: s.ID, State: "skipped"}
	}
	started := make([]bool, n)
	succeeded := map[string]bool{}
	cctx, cancelSteps := workflow.WithCancel(ctx)
	selector := workflow.NewSelector(ctx)
	pending, done := 0, 0
	var failure error
	fail := func(i int, msg string) {
		outcome[i].State, outcome[i].Error = string(job.StateFailed), msg
		if failure == nil {
			failure = temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %q failed: %s", in.Steps[i].ID, msg), "step-failed", nil)
			cancelSteps()
		}
	}
	startReady := func() {
		for i, s := range in.Steps {
			if started[i] || failure != nil || ctx.Err() != nil {
				continue
			}
			ready := true
			for _, a := range s.After {
				ready = ready && succeeded[a]
			}
			if !ready {
				continue
			}
			started[i] = true
			input := s.Input
			var err error
			if s.Kind != "pipeline" {
				input, err = resolveRefs(s.Input, results)
			}
			if err != nil {
				fail(i, "its input: "+err.Error())
				continue
			}
			child := StartJob(cctx, s.Kind, input, ChildOptions{Step: s.ID})
			outcome[i].JobID = child.ID
			if child.err != nil {
				fail(i, Message(child.err))
				continue
			}
			outcome[i].State = string(job.StateRunning)
			pending++
			selector.AddFuture(child.done, func(f workflow.Future) {
				pending--
				var out workflows.Output
				err := f.Get(ctx, &out)
				switch {
				case err == nil:
					done++
					succeeded[s.ID] = true
					if out.Blob == nil {
						results[s.ID] = out.Result
					}
					outcome[i].State = string(job.StateSucceeded)
					outcome[i].ResultURL = "/v1/jobs/" + child.ID + "/result"
					Progress(ctx, int64(done), int64(n), fmt.Sprintf("%d of %d steps done", done, n))
				case temporal.IsCanceledError(err):
					// Canceled with the pipeline or after another step
					// failed; canceled on its own, it fails the pipeline.
					if ctx.Err() == nil && failure == nil {
						fail(i, "its job was canceled")
					}
					outcome[i].State = string(job.StateCanceled)
				default:
					fail(i, Message(err))
				}
			})
		}
	}
	Progress(ctx, 0, int64(n), fmt.Sprintf("0 of %d steps done", n))
	startReady()
	for pending > 0 {
		selector.Select(ctx)
		startReady()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if failure != nil {
		return nil, failure
	}
	return PipelineResult{Steps: outcome}, nil
}
