package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
)

func TestRerun(t *testing.T) {
	t.Parallel()
	probe := newProbeKind()
	type failInput struct {
		Fail bool `json:"fail"`
	}
	// test.fail fails for good when asked to, and succeeds otherwise.
	failKind := job.Define(job.KindSpec[failInput]{
		Name:        "test.fail",
		Description: "Fails when its input says so (tests only).",
		InputSchema: `{"type":"object","properties":{"fail":{"type":"boolean"}},"additionalProperties":false}`,
		Plan:        func(failInput) job.Plan { return job.Plan{Expected: time.Millisecond} },
		Run: func(_ context.Context, in failInput, _ job.Reporter) (any, error) {
			if in.Fail {
				return nil, job.Permanent("asked-to-fail", errors.New("failed as asked"))
			}
			return map[string]bool{"ok": true}, nil
		},
	})
	e := mustStartEnv(t, envOptions{kinds: []job.Kind{probe.kind(), failKind}})

	t.Run("succeeded", func(t *testing.T) {
		t.Parallel()
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":0},"priority":2}`)
		e.waitState(id, job.StateSucceeded, workerRoundTrip)
		rerun := e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", "")
		require.Equal(t, http.StatusAccepted, rerun.StatusCode, "body: %s", rerun.Body)
		body := rerun.JSON(t)
		again := body["id"].(string)
		require.NotEqual(t, id, again)
		require.Equal(t, "/v1/jobs/"+again, rerun.Header.Get("Location"))
		require.Equal(t, id, body["rerunOf"])
		require.Equal(t, "sleep", body["kind"])
		require.EqualValues(t, 2, body["priority"], "the priority is kept")
		done := e.waitState(again, job.StateSucceeded, workerRoundTrip).JSON(t)
		require.Equal(t, id, done["rerunOf"])
		require.JSONEq(t, `{"slept":0}`, string(e.do(http.MethodGet, "/v1/jobs/"+again+"/result", "").Body))
	})
	t.Run("failed, with the input replaced", func(t *testing.T) {
		t.Parallel()
		id, _ := e.submit(`{"kind":"test.fail","input":{"fail":true}}`)
		e.waitState(id, job.StateFailed, workerRoundTrip)
		// Rerun as it was: it fails again.
		same := e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", "")
		require.Equal(t, http.StatusAccepted, same.StatusCode, "body: %s", same.Body)
		e.waitState(same.JSON(t)["id"].(string), job.StateFailed, workerRoundTrip)
		requireProblem(t, e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", `{"input":{"fail":"no"}}`), http.StatusUnprocessableEntity, "invalid-input")
		// With the input replaced: it succeeds.
		rerun := e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", `{"input":{"fail":false}}`)
		require.Equal(t, http.StatusAccepted, rerun.StatusCode, "body: %s", rerun.Body)
		again := rerun.JSON(t)["id"].(string)
		require.Equal(t, id, rerun.JSON(t)["rerunOf"])
		e.waitState(again, job.StateSucceeded, workerRoundTrip)
		require.JSONEq(t, `{"ok":true}`, string(e.do(http.MethodGet, "/v1/jobs/"+again+"/result", "").Body), "the replaced input ran")
	})
	t.Run("canceled, with an Idempotency-Key", func(t *testing.T) {
		t.Parallel()
		id, _ := e.submit(`{"kind":"sleep","input":{"seconds":60}}`)
		require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
		e.waitState(id, job.StateCanceled, workerRoundTrip)
		first := e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", `{"input":{"seconds":0}}`, "Idempotency-Key", "rerun-"+id)
		require.Equal(t, http.StatusAccepted, first.StatusCode, "body: %s", first.Body)
		replay := e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", `{"input":{"seconds":0}}`, "Idempotency-Key", "rerun-"+id)
		require.Equal(t, http.StatusAccepted, replay.StatusCode)
		require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
		require.Equal(t, first.JSON(t)["id"], replay.JSON(t)["id"])
		e.waitState(first.JSON(t)["id"].(string), job.StateSucceeded, workerRoundTrip)
	})
	t.Run("running is a conflict", func(t *testing.T) {
		t.Parallel()
		id, _ := e.submit(`{"kind":"test.wait","input":{}}`)
		started, _ := probe.chans(id)
		<-started
		p := requireProblem(t, e.do(http.MethodPost, "/v1/jobs/"+id+"/rerun", ""), http.StatusConflict, "job-not-finished")
		require.Equal(t, id, p["jobId"])
		require.Equal(t, "running", p["state"])
		requireProblem(t, e.do(http.MethodPost, "/v1/jobs/00000000-0000-4000-8000-000000000000/rerun", ""), http.StatusNotFound, "not-found")
		require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)
	})
}
