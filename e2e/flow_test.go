package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/jobgate/jobgate/client"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/job"
)

// stepActs are the activities of the e2e.steps kind: three steps, the
// second of which runs until released (or its worker stops).
type stepActs struct {
	first, slow, last atomic.Int32
	release           chan struct{}
}

func (a *stepActs) StepsFirst(ctx context.Context) (string, error) {
	a.first.Add(1)
	return "one", nil
}

func (a *stepActs) StepsSlow(ctx context.Context) (string, error) {
	a.slow.Add(1)
	select {
	case <-a.release:
		return "two", nil
	case <-activity.GetWorkerStopChannel(ctx):
		return "", errors.New("the worker is stopping")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (a *stepActs) StepsLast(ctx context.Context) (string, error) {
	a.last.Add(1)
	return "three", nil
}

func stepsKind(a *stepActs) job.Kind {
	return flow.Define(flow.Spec[struct{}]{
		Name:        "e2e.steps",
		Description: "three steps, the second until released",
		Plan:        func(struct{}) job.Plan { return job.Plan{Expected: 3 * time.Second} },
		Activities:  []any{a},
		Workflow: func(ctx workflow.Context, _ struct{}) (any, error) {
			var out []string
			retry := flow.StepOptions{Retry: job.RetryPolicy{MaximumAttempts: 5, InitialInterval: 100 * time.Millisecond}}
			for i, step := range []struct{ name, activity string }{{"first", "StepsFirst"}, {"slow", "StepsSlow"}, {"last", "StepsLast"}} {
				flow.Progress(ctx, int64(i), 3, "running "+step.name)
				var r string
				if err := flow.Run(ctx, step.name, retry, step.activity).Get(ctx, &r); err != nil {
					return nil, err
				}
				out = append(out, r)
			}
			flow.Progress(ctx, 3, 3, "done")
			return out, nil
		},
	})
}

// stepsOf returns the steps of a status body by name.
func stepsOf(body map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	steps, _ := body["steps"].([]any)
	for _, s := range steps {
		m := s.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// A workflow kind shows its steps and progress while it runs, also with
// every worker stopped; a worker killed mid-step and another started: the
// job resumes at that step (the first step is not run again) and succeeds.
func TestWorkflowKindStepsResumeOnAnotherWorker(t *testing.T) {
	t.Parallel()
	acts := &stepActs{release: make(chan struct{})}
	e := mustStartEnv(t, envOptions{noWorker: true, kinds: []job.Kind{stepsKind(acts)}})
	w1 := e.startWorker()
	id, accepted := e.submit(`{"kind":"e2e.steps","input":{}}`)
	require.Equal(t, "queued", accepted.JSON(t)["state"])

	var body map[string]any
	eventually(t, workerRoundTrip, "the slow step running", func() bool {
		body = e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
		steps := stepsOf(body)
		return steps["first"]["state"] == "succeeded" && steps["slow"]["state"] == "running"
	})
	require.Equal(t, "running", body["state"])
	require.NotNil(t, body["startedAt"])
	require.EqualValues(t, 1, body["progress"].(map[string]any)["current"])
	require.Equal(t, "running slow", body["progress"].(map[string]any)["message"])

	w1.Stop()
	// No worker: the status still answers from Temporal's record.
	stopped := e.do(http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusOK, stopped.StatusCode)
	steps := stepsOf(stopped.JSON(t))
	require.Equal(t, "succeeded", steps["first"]["state"])
	require.Contains(t, []any{"running"}, steps["slow"]["state"])

	e.startWorker()
	eventually(t, workerRoundTrip, "the slow step retried on the new worker", func() bool { return acts.slow.Load() >= 2 })
	eventually(t, workerRoundTrip, "the retry shows as attempt 2", func() bool {
		return stepsOf(e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t))["slow"]["attempt"] == 2.0
	})
	close(acts.release)
	done := e.waitState(id, job.StateSucceeded, workerRoundTrip).JSON(t)
	require.EqualValues(t, 1, acts.first.Load(), "the first step ran once")
	require.EqualValues(t, 1, acts.last.Load())
	require.EqualValues(t, 100, done["progress"].(map[string]any)["percent"])
	final := stepsOf(done)
	require.Len(t, final, 3)
	for _, name := range []string{"first", "slow", "last"} {
		require.Equal(t, "succeeded", final[name]["state"], name)
		require.NotNil(t, final[name]["completedAt"], name)
	}
	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, result.StatusCode)
	require.JSONEq(t, `["one","two","three"]`, string(result.Body))
}

// collectActs gate the e2e.collect kind's first step.
type collectActs struct{ release chan struct{} }

func (a *collectActs) CollectPrepare(ctx context.Context) error {
	select {
	case <-a.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type collectInput struct {
	Items int `json:"items"`
}

func collectKind(a *collectActs) job.Kind {
	return flow.Define(flow.Spec[collectInput]{
		Name:        "e2e.collect",
		Description: "prepares, then collects items until it has as many as asked",
		Inputs:      []job.Input{{Name: "item", Schema: json.RawMessage(`{"type":"object","required":["value"],"properties":{"value":{"type":"string"}},"additionalProperties":false}`)}},
		Activities:  []any{a},
		Workflow: func(ctx workflow.Context, in collectInput) (any, error) {
			if err := flow.Run(ctx, "prepare", flow.StepOptions{}, "CollectPrepare").Get(ctx, nil); err != nil {
				return nil, err
			}
			var got []string
			for len(got) < in.Items {
				var item struct {
					Value string `json:"value"`
				}
				err := flow.WaitFor(ctx, "item", &item, flow.WaitOptions{Validate: func(body json.RawMessage) error {
					var v struct{ Value string }
					_ = json.Unmarshal(body, &v)
					if v.Value == "bad" {
						return errors.New(`"bad" is not an item`)
					}
					return nil
				}})
				if err != nil {
					return nil, err
				}
				got = append(got, item.Value)
				flow.Progress(ctx, int64(len(got)), int64(in.Items), "collected "+item.Value)
			}
			return got, nil
		},
	})
}

func (e *env) sendInput(id, name, body string, header ...string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/"+name, body, header...)
}

// Inputs to a running job: 409 before it waits, 404 for an input its kind
// lacks, 422 for a body failing the schema or the job's own validator,
// 200 once taken; waitingFor appears and goes; a retried delivery with the
// same Idempotency-Key is taken once; 409 once the job has ended.
func TestInputsToARunningJob(t *testing.T) {
	t.Parallel()
	acts := &collectActs{release: make(chan struct{})}
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{collectKind(acts)}})
	id, _ := e.submit(`{"kind":"e2e.collect","input":{"items":2}}`)
	eventually(t, workerRoundTrip, "preparing", func() bool {
		return stepsOf(e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t))["prepare"]["state"] == "running"
	})
	// Not waiting yet: the workflow has no handler for it so far.
	requireProblem(t, e.sendInput(id, "item", `{"value":"early"}`), http.StatusConflict, "not-waiting")
	requireProblem(t, e.sendInput(id, "nope", `{}`), http.StatusNotFound, "no-such-input")

	close(acts.release)
	var body map[string]any
	eventually(t, workerRoundTrip, "waiting for an item", func() bool {
		body = e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
		w, _ := body["waitingFor"].([]any)
		return len(w) == 1
	})
	require.Equal(t, "running", body["state"])
	waiting := body["waitingFor"].([]any)[0].(map[string]any)
	require.Equal(t, "item", waiting["name"])
	require.Equal(t, "/v1/jobs/"+id+"/inputs/item", waiting["url"])
	require.NotEmpty(t, waiting["since"])
	require.Nil(t, body["estimatedCompletion"])

	invalid := requireProblem(t, e.sendInput(id, "item", `{"value":5}`), http.StatusUnprocessableEntity, "invalid-input")
	require.Equal(t, "/value", invalid["errors"].([]any)[0].(map[string]any)["field"])
	rejected := requireProblem(t, e.sendInput(id, "item", `{"value":"bad"}`), http.StatusUnprocessableEntity, "input-rejected")
	require.Contains(t, rejected["detail"], `"bad" is not an item`)

	first := e.sendInput(id, "item", `{"value":"a"}`, "Idempotency-Key", "delivery-1")
	require.Equal(t, http.StatusOK, first.StatusCode, "body: %s", first.Body)
	require.Equal(t, id, first.JSON(t)["id"])
	// The retry of the same delivery is not taken again.
	again := e.sendInput(id, "item", `{"value":"a"}`, "Idempotency-Key", "delivery-1")
	require.Equal(t, http.StatusOK, again.StatusCode, "body: %s", again.Body)
	eventually(t, workerRoundTrip, "waiting for the second item", func() bool {
		body = e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)
		p, _ := body["progress"].(map[string]any)
		w, _ := body["waitingFor"].([]any)
		return p != nil && p["current"] == 1.0 && len(w) == 1
	})
	second := e.sendInput(id, "item", `{"value":"b"}`, "Idempotency-Key", "delivery-2")
	require.Equal(t, http.StatusOK, second.StatusCode, "body: %s", second.Body)
	done := e.waitState(id, job.StateSucceeded, workerRoundTrip).JSON(t)
	require.Nil(t, done["waitingFor"])
	result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.JSONEq(t, `["a","b"]`, string(result.Body), "one item per delivery")

	ended := requireProblem(t, e.sendInput(id, "item", `{"value":"c"}`), http.StatusConflict, "not-waiting")
	require.Equal(t, "succeeded", ended["state"])
}

// Another tenant's job takes no input: 404, and the job still waits.
func TestInputToAnotherTenantsJobIsNotFound(t *testing.T) {
	t.Parallel()
	keyA, keyB := "ak_test_inputs_alpha", "ak_test_inputs_bravo"
	e := mustStartEnv(t, envOptions{apiKeys: map[string]string{"alpha": keyA, "bravo": keyB}})
	id, _ := e.submit(`{"kind":"approval","input":{"timeoutSeconds":600}}`, bearer(keyA)...)
	eventually(t, workerRoundTrip, "waiting for a decision", func() bool {
		w, _ := e.do(http.MethodGet, "/v1/jobs/"+id, "", bearer(keyA)...).JSON(t)["waitingFor"].([]any)
		return len(w) == 1
	})
	requireProblem(t, e.sendInput(id, "decision", `{"approved":true}`, bearer(keyB)...), http.StatusNotFound, "not-found")
	w, _ := e.do(http.MethodGet, "/v1/jobs/"+id, "", bearer(keyA)...).JSON(t)["waitingFor"].([]any)
	require.Len(t, w, 1, "still waiting")
	ok := e.sendInput(id, "decision", `{"approved":true}`, bearer(keyA)...)
	require.Equal(t, http.StatusOK, ok.StatusCode, "body: %s", ok.Body)
	e.waitStateAs(id, job.StateSucceeded, bearer(keyA))
}

// approval: approved and rejected succeed with the decision as result;
// no decision in time fails it with a clear error; GET /v1/kinds
// publishes its input's schema.
func TestApproval(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	waitingFor := func(id string) {
		eventually(t, workerRoundTrip, "waiting for a decision", func() bool {
			w, _ := e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)["waitingFor"].([]any)
			return len(w) == 1
		})
	}
	for _, tc := range []struct {
		name     string
		decision string
	}{
		{"approved", `{"approved":true,"comment":"ship it"}`},
		{"rejected", `{"approved":false,"comment":"not now"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, _ := e.submit(`{"kind":"approval","input":{"prompt":"Deploy v2?","timeoutSeconds":600}}`)
			waitingFor(id)
			progress := e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t)["progress"].(map[string]any)
			require.Equal(t, "Deploy v2?", progress["message"])
			resp := e.sendInput(id, "decision", tc.decision)
			require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
			e.waitState(id, job.StateSucceeded, workerRoundTrip)
			result := e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
			require.JSONEq(t, tc.decision, string(result.Body))
		})
	}
	t.Run("timed out", func(t *testing.T) {
		t.Parallel()
		id, _ := e.submit(`{"kind":"approval","input":{"prompt":"Quick!","timeoutSeconds":1}}`)
		failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
		jobErr := failed["error"].(map[string]any)
		require.Contains(t, jobErr["detail"], "no decision within 1 s")
		require.Contains(t, jobErr["title"], "timeout")
	})
	t.Run("kinds", func(t *testing.T) {
		t.Parallel()
		var kinds struct {
			Kinds []struct {
				Name     string
				Workflow bool
				Inputs   []struct {
					Name   string
					Schema map[string]any
				}
			}
		}
		require.NoError(t, json.Unmarshal(e.do(http.MethodGet, "/v1/kinds", "").Body, &kinds))
		found := false
		for _, k := range kinds.Kinds {
			if k.Name == "approval" {
				found = true
				require.True(t, k.Workflow)
				require.Len(t, k.Inputs, 1)
				require.Equal(t, "decision", k.Inputs[0].Name)
				require.Equal(t, []any{"approved"}, k.Inputs[0].Schema["required"])
			}
		}
		require.True(t, found)
	})
}

// A job with a callbackUrl that starts waiting gets a signed job.waiting
// webhook whose data lists what it waits for.
func TestWaitingWebhook(t *testing.T) {
	t.Parallel()
	rc := mustStartReceiver(t, http.StatusNoContent)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "approval", "input": map[string]any{"timeoutSeconds": 600}, "callbackUrl": rc.URL}))
	eventually(t, workerRoundTrip, "the job.waiting webhook", func() bool { return len(rc.deliveries()) >= 1 })
	d := rc.deliveries()[0]
	payload := verifyWebhook(t, e.WebhookSecret, d)
	require.Equal(t, "job.waiting", payload["type"])
	data := payload["data"].(map[string]any)
	require.Equal(t, id, data["id"])
	require.Equal(t, "running", data["state"])
	require.Equal(t, "decision", data["waitingFor"].([]any)[0].(map[string]any)["name"])
	require.Equal(t, http.StatusOK, e.sendInput(id, "decision", `{"approved":true}`).StatusCode)
	e.waitState(id, job.StateSucceeded, workerRoundTrip)
	eventually(t, workerRoundTrip, "the job.succeeded webhook", func() bool { return len(rc.deliveries()) >= 2 })
	var types []any
	for _, d := range rc.deliveries() {
		types = append(types, verifyWebhook(t, e.WebhookSecret, d)["type"])
	}
	require.ElementsMatch(t, []any{"job.waiting", "job.succeeded"}, types)
}

// childOf reads a pipeline step's child job.
func (e *env) stepJob(pipeline map[string]any, step string) map[string]any {
	e.t.Helper()
	id, _ := stepsOf(pipeline)[step]["jobId"].(string)
	require.NotEmpty(e.t, id, "step %s has a job", step)
	return e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(e.t)
}

// Fan-out and fan-in: two parallel steps overlap, the third starts after
// both; every step is a child job with parentId, listed under the parent;
// progress counts steps; the result lists each step's job and result URL.
func TestPipelineFanOutFanIn(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"pipeline","input":{"steps":[
		{"id":"a","kind":"sleep","input":{"seconds":2}},
		{"id":"b","kind":"sleep","input":{"seconds":2}},
		{"id":"c","kind":"sleep","input":{"seconds":0},"after":["a","b"]}]}}`)
	done := e.waitState(id, job.StateSucceeded, 2*workerRoundTrip).JSON(t)
	require.EqualValues(t, 3, done["progress"].(map[string]any)["current"])
	a, b, c := e.stepJob(done, "a"), e.stepJob(done, "b"), e.stepJob(done, "c")
	for _, child := range []map[string]any{a, b, c} {
		require.Equal(t, "succeeded", child["state"])
		require.Equal(t, id, child["parentId"])
	}
	aStart, aEnd := parseTime(t, a["startedAt"]), parseTime(t, a["completedAt"])
	bStart, bEnd := parseTime(t, b["startedAt"]), parseTime(t, b["completedAt"])
	require.True(t, aStart.Before(bEnd) && bStart.Before(aEnd), "a [%s, %s] and b [%s, %s] overlap", aStart, aEnd, bStart, bEnd)
	cStart := parseTime(t, c["startedAt"])
	require.False(t, cStart.Before(aEnd) || cStart.Before(bEnd), "c starts after a and b")

	var result flow.PipelineResult
	require.NoError(t, json.Unmarshal(e.do(http.MethodGet, "/v1/jobs/"+id+"/result", "").Body, &result))
	require.Len(t, result.Steps, 3)
	for _, s := range result.Steps {
		require.Equal(t, "succeeded", s.State)
		require.Equal(t, "/v1/jobs/"+s.JobID+"/result", s.ResultURL)
	}
	e.waitChildrenListed(id, 3)
}

// waitChildrenListed waits until the listing of the job's children
// (?parentId=) holds n jobs.
func (e *env) waitChildrenListed(parent string, n int) {
	e.t.Helper()
	eventually(e.t, 15*time.Second, "the children listed under the parent", func() bool {
		var page struct{ Jobs []map[string]any }
		require.NoError(e.t, json.Unmarshal(e.do(http.MethodGet, "/v1/jobs?parentId="+parent, "").Body, &page))
		return len(page.Jobs) == n
	})
}

// The first failed step fails the pipeline: steps after it never start,
// steps running beside it are canceled.
func TestPipelineFailingStep(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "pipeline", "input": map[string]any{"steps": []any{
		map[string]any{"id": "long", "kind": "sleep", "input": map[string]any{"seconds": 600}},
		// An approval nobody decides fails after a second.
		map[string]any{"id": "bad", "kind": "approval", "input": map[string]any{"timeoutSeconds": 1}},
		map[string]any{"id": "never", "kind": "sleep", "input": map[string]any{"seconds": 0}, "after": []string{"bad"}},
	}}}))
	failed := e.waitState(id, job.StateFailed, 2*workerRoundTrip).JSON(t)
	require.Contains(t, failed["error"].(map[string]any)["detail"], `step "bad" failed`)
	steps := stepsOf(failed)
	require.NotContains(t, steps, "never", "a step after the failed one never starts")
	require.Equal(t, "canceled", e.stepJob(failed, "long")["state"])
	require.Equal(t, "failed", e.stepJob(failed, "bad")["state"])
}

// DELETE of a running pipeline cancels every child job; the pipeline ends
// canceled.
func TestPipelineCanceled(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"pipeline","input":{"steps":[
		{"id":"a","kind":"sleep","input":{"seconds":600}},
		{"id":"b","kind":"approval","input":{"timeoutSeconds":600}},
		{"id":"c","kind":"sleep","input":{"seconds":0},"after":["a"]}]}}`)
	eventually(t, workerRoundTrip, "both steps running", func() bool {
		steps := stepsOf(e.do(http.MethodGet, "/v1/jobs/"+id, "").JSON(t))
		return steps["a"]["state"] == "running" && steps["b"]["state"] == "running"
	})
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
	canceled := e.waitState(id, job.StateCanceled, workerRoundTrip).JSON(t)
	require.Equal(t, "canceled", e.stepJob(canceled, "a")["state"])
	require.Equal(t, "canceled", e.stepJob(canceled, "b")["state"])
	require.NotContains(t, stepsOf(canceled), "c")
}

// A step reads an earlier step's result through a reference.
func TestPipelineStepReadsEarlierResult(t *testing.T) {
	t.Parallel()
	source := httpTarget(t, `{"token":"tok-123"}`)
	sink := mustStartReceiver(t, http.StatusOK)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "pipeline", "input": map[string]any{"steps": []any{
		map[string]any{"id": "fetch", "kind": "http.request", "input": map[string]any{"url": source}},
		map[string]any{"id": "use", "kind": "http.request", "after": []string{"fetch"}, "input": map[string]any{
			"method": "POST", "url": sink.URL, "body": map[string]any{"token": map[string]any{"$result": "fetch", "pointer": "/body/token"}}}},
	}}}))
	e.waitState(id, job.StateSucceeded, 2*workerRoundTrip)
	got := sink.deliveries()
	require.Len(t, got, 1)
	require.JSONEq(t, `{"token":"tok-123"}`, string(got[0].body))
}

// httpTarget serves body as JSON on every request.
func httpTarget(tb testing.TB, body string) string {
	tb.Helper()
	srv := newJSONServer(body)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// A pipeline is validated before acceptance: 422 with JSON pointers into
// the steps, and nothing started.
func TestPipelineValidation(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	many := make([]any, flow.MaxPipelineSteps+1)
	for i := range many {
		many[i] = map[string]any{"id": fmt.Sprint("s", i), "kind": "sleep", "input": map[string]any{"seconds": 0}}
	}
	nested := map[string]any{"steps": []any{map[string]any{"id": "x", "kind": "sleep", "input": map[string]any{"seconds": 0}}}}
	for i := 0; i < flow.MaxDepth; i++ {
		nested = map[string]any{"steps": []any{map[string]any{"id": "p", "kind": "pipeline", "input": nested}}}
	}
	for _, tc := range []struct {
		name  string
		steps any
		field string
	}{
		{"unknown kind", []any{map[string]any{"id": "a", "kind": "nope"}}, "/input/steps/0/kind"},
		{"bad step input", []any{map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": -1}}}, "/input/steps/0/input/seconds"},
		{"unknown after", []any{map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 0}, "after": []string{"zz"}}}, "/input/steps/0/after/0"},
		{"cycle", []any{
			map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 0}, "after": []string{"b"}},
			map[string]any{"id": "b", "kind": "sleep", "input": map[string]any{"seconds": 0}, "after": []string{"a"}},
		}, "/input/steps/0/after"},
		{"duplicate ids", []any{
			map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 0}},
			map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 0}},
		}, "/input/steps/1/id"},
		{"reference to a step it does not follow", []any{
			map[string]any{"id": "a", "kind": "sleep", "input": map[string]any{"seconds": 0}},
			map[string]any{"id": "b", "kind": "http.request", "input": map[string]any{"url": map[string]any{"$result": "a"}}},
		}, "/input/steps/1/input"},
		{"too many steps", many, "/input/steps"},
		{"nested too deep", nested["steps"], "/input/steps/0/input/steps/0/input/steps/0/input/steps/0/input/steps/0/kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := e.do(http.MethodPost, "/v1/jobs", mustJSON(t, map[string]any{"kind": "pipeline", "input": map[string]any{"steps": tc.steps}}))
			p := requireProblem(t, resp, http.StatusUnprocessableEntity, "invalid-input")
			var fields []string
			for _, fe := range p["errors"].([]any) {
				fields = append(fields, fe.(map[string]any)["field"].(string))
			}
			require.Contains(t, fields, tc.field)
		})
	}
}

// A workflow kind's code that fails fails the job with its message.
func TestWorkflowKindFailure(t *testing.T) {
	t.Parallel()
	kind := flow.Define(flow.Spec[struct{}]{
		Name: "e2e.fails",
		Workflow: func(ctx workflow.Context, _ struct{}) (any, error) {
			return nil, temporal.NewNonRetryableApplicationError("the order was refused", "refused", nil)
		},
	})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{kind}})
	id, _ := e.submit(`{"kind":"e2e.fails","input":{}}`)
	failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
	require.Equal(t, "the order was refused", failed["error"].(map[string]any)["detail"])
}

// verifyWebhook checks a delivery's signature with the reference library
// and returns its payload.
func verifyWebhook(tb testing.TB, secret string, d delivery) map[string]any {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(tb, err)
	require.NoError(tb, wh.Verify(d.body, d.header), "signature")
	var payload map[string]any
	require.NoError(tb, json.Unmarshal(d.body, &payload))
	return payload
}

func newJSONServer(body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
}

// The Go client waits until a job waits for input, delivers it, and waits
// for the end; a second delivery is ErrConflict.
func TestClientSendInput(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	c := mustClient(t, e, client.WithLongPoll(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "approval", Input: map[string]any{"prompt": "go?", "timeoutSeconds": 600}})
	require.NoError(t, err)
	j, err = c.WaitOrInput(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateRunning, j.State)
	require.Equal(t, "decision", j.WaitingFor[0].Name)
	_, err = c.SendInput(ctx, j.ID, "decision", flow.Decision{Approved: true, Comment: "go"}, "client-decision")
	require.NoError(t, err)
	done, err := c.Wait(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, done.State)
	var d flow.Decision
	require.NoError(t, c.ResultJSON(ctx, j.ID, &d))
	require.Equal(t, flow.Decision{Approved: true, Comment: "go"}, d)
	_, err = c.SendInput(ctx, j.ID, "decision", flow.Decision{}, "")
	require.ErrorIs(t, err, client.ErrConflict)
}

// A chatty workflow kind does not grow its history with every report:
// progress reaches the memo at most about once a second.
func TestWorkflowProgressIsThrottled(t *testing.T) {
	t.Parallel()
	// Bursts of reports with timers between them: each timer is a
	// workflow task of its own, as a chatty workflow's work would be.
	const bursts, perBurst = 8, 25
	const reports = bursts * perBurst
	kind := flow.Define(flow.Spec[struct{}]{
		Name: "e2e.chatty",
		Workflow: func(ctx workflow.Context, _ struct{}) (any, error) {
			for b := range bursts {
				for i := range perBurst {
					flow.Progress(ctx, int64(b*perBurst+i+1), reports, "tick")
				}
				if err := workflow.Sleep(ctx, 50*time.Millisecond); err != nil {
					return nil, err
				}
			}
			return reports, nil
		},
	})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{kind}})
	id, _ := e.submit(`{"kind":"e2e.chatty","input":{}}`)
	done := e.waitState(id, job.StateSucceeded, workerRoundTrip).JSON(t)
	require.EqualValues(t, reports, done["progress"].(map[string]any)["current"], "the last report is published")
	started := parseTime(t, done["startedAt"])
	elapsed := parseTime(t, done["completedAt"]).Sub(started)
	it := e.Temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	upserts := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED {
			upserts++
		}
	}
	// One at the start, one at the end, and about one per second between.
	require.LessOrEqual(t, upserts, int(elapsed/flow.PublishInterval)+4, "%d memo writes in %s for %d reports", upserts, elapsed, reports)
	require.LessOrEqual(t, upserts, bursts+3, "at most one write per workflow task, plus start and end")
}

// A listing shows a workflow kind's progress, steps and waits as GET does.
func TestListingShowsWorkflowKindState(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	id, _ := e.submit(`{"kind":"approval","input":{"prompt":"listed?","timeoutSeconds":600}}`)
	eventually(t, workerRoundTrip, "the listing shows the wait", func() bool {
		var page struct{ Jobs []map[string]any }
		require.NoError(t, json.Unmarshal(e.do(http.MethodGet, "/v1/jobs?kind=approval", "").Body, &page))
		for _, j := range page.Jobs {
			w, _ := j["waitingFor"].([]any)
			p, _ := j["progress"].(map[string]any)
			if j["id"] == id && len(w) == 1 && p != nil && p["message"] == "listed?" {
				return len(stepsOf(j)) == 1
			}
		}
		return false
	})
}

// A workflow kind's job is bounded by its plan's timeout, waits included:
// past it the job fails with type timeout; a plain error of the kind's
// code fails the job with its own message.
func TestWorkflowKindTimeoutAndPlainErrors(t *testing.T) {
	t.Parallel()
	waits := flow.Define(flow.Spec[struct{}]{
		Name:   "e2e.waits-forever",
		Inputs: []job.Input{{Name: "never"}},
		Plan:   func(struct{}) job.Plan { return job.Plan{Expected: time.Second, Timeout: 2 * time.Second} },
		Workflow: func(ctx workflow.Context, _ struct{}) (any, error) {
			return nil, flow.WaitFor(ctx, "never", nil, flow.WaitOptions{})
		},
	})
	plain := flow.Define(flow.Spec[struct{}]{
		Name: "e2e.plain-error",
		Workflow: func(ctx workflow.Context, _ struct{}) (any, error) {
			return nil, fmt.Errorf("sku %s is unknown", "x-1")
		},
	})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{waits, plain}})
	id, _ := e.submit(`{"kind":"e2e.waits-forever","input":{}}`)
	failed := e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
	require.Contains(t, failed["error"].(map[string]any)["title"], "timeout")
	require.Contains(t, failed["error"].(map[string]any)["detail"], "did not finish within its 2s")
	id, _ = e.submit(`{"kind":"e2e.plain-error","input":{}}`)
	failed = e.waitState(id, job.StateFailed, workerRoundTrip).JSON(t)
	require.Equal(t, "sku x-1 is unknown", failed["error"].(map[string]any)["detail"])
}
