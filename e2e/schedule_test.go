package e2e

import (
	"context"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	temporalclient "go.temporal.io/sdk/client"

	"github.com/jobgate/jobgate/client"
	"github.com/jobgate/jobgate/job"
)

// createSchedule POSTs a schedule, requires a 201 and deletes the schedule
// from Temporal when the test ends (a schedule outlives its env
// otherwise); it returns the schedule's body.
func (e *env) createSchedule(tenant, body string, auth ...string) map[string]any {
	e.t.Helper()
	resp := e.do(http.MethodPost, "/v1/schedules", body, auth...)
	require.Equal(e.t, http.StatusCreated, resp.StatusCode, "body: %s", resp.Body)
	sc := resp.JSON(e.t)
	id := sc["id"].(string)
	require.Equal(e.t, "/v1/schedules/"+id, resp.Header.Get("Location"))
	e.t.Cleanup(func() {
		_ = e.Temporal.ScheduleClient().GetHandle(context.Background(), tenant+":"+id).Delete(context.Background())
	})
	return sc
}

// runs is a schedule's recent runs, as GET /v1/schedules/{id} shows them.
func (e *env) runs(id string, auth ...string) []map[string]any {
	e.t.Helper()
	resp := e.do(http.MethodGet, "/v1/schedules/"+id, "", auth...)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, "body: %s", resp.Body)
	var out []map[string]any
	for _, r := range resp.JSON(e.t)["recentRuns"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// quietFor checks, polling, that cond stays false for d.
func quietFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		require.False(tb, cond(), what)
		time.Sleep(200 * time.Millisecond)
	}
}

func TestScheduleRunsPausesTriggersDeletes(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	sc := e.createSchedule(e.Tenant, `{"id":"every2","every":"2s","job":{"kind":"sleep","input":{"seconds":0},"priority":2}}`)
	require.Equal(t, "2s", sc["every"])
	require.Equal(t, "skip", sc["overlap"])
	require.Len(t, sc["nextRunTimes"], 5)

	// Runs come every 2 seconds, on time, as ordinary jobs.
	eventually(t, 20*time.Second, "three runs", func() bool { return len(e.runs("every2")) >= 3 })
	runs := e.runs("every2")
	for i, r := range runs {
		due, started := parseTime(t, r["scheduledAt"]), parseTime(t, r["startedAt"])
		require.Less(t, started.Sub(due), 2*time.Second, "run %d started %s after its time", i, started.Sub(due))
		if i > 0 {
			require.Equal(t, 2*time.Second, due.Sub(parseTime(t, runs[i-1]["scheduledAt"])).Round(time.Second))
		}
	}
	first := runs[0]["jobId"].(string)
	// Operators find the schedule and its runs by tenant and kind.
	desc, err := e.Temporal.ScheduleClient().GetHandle(context.Background(), e.Tenant+":every2").Describe(context.Background())
	require.NoError(t, err)
	require.Contains(t, desc.SearchAttributes.GetIndexedFields(), "JobTenant")
	require.Contains(t, desc.SearchAttributes.GetIndexedFields(), "JobKind")
	run, err := e.Temporal.DescribeWorkflowExecution(context.Background(), first, "")
	require.NoError(t, err)
	require.Contains(t, run.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "JobTenant")
	require.Contains(t, run.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "JobKind")
	status := e.waitState(first, job.StateSucceeded, workerRoundTrip).JSON(t)
	require.Equal(t, "every2", status["scheduleId"])
	require.EqualValues(t, 2, status["priority"])
	require.JSONEq(t, `{"slept":0}`, string(e.do(http.MethodGet, "/v1/jobs/"+first+"/result", "").Body))
	eventually(t, 10*time.Second, "the runs listed by scheduleId", func() bool {
		jobs, _ := e.do(http.MethodGet, "/v1/jobs?scheduleId=every2", "").JSON(t)["jobs"].([]any)
		return len(jobs) >= 3 && jobs[0].(map[string]any)["scheduleId"] == "every2"
	})

	// Paused, it starts none.
	paused := e.do(http.MethodPost, "/v1/schedules/every2/pause", "")
	require.Equal(t, http.StatusOK, paused.StatusCode, "body: %s", paused.Body)
	require.Equal(t, true, paused.JSON(t)["paused"])
	require.Empty(t, paused.JSON(t)["nextRunTimes"])
	before := len(e.runs("every2"))
	quietFor(t, 5*time.Second, "a paused schedule started a run", func() bool { return len(e.runs("every2")) > before })

	// Trigger starts one now, paused or not.
	trig := e.do(http.MethodPost, "/v1/schedules/every2/trigger", "")
	require.Equal(t, http.StatusAccepted, trig.StatusCode, "body: %s", trig.Body)
	eventually(t, 10*time.Second, "the triggered run", func() bool { return len(e.runs("every2")) == before+1 })
	quietFor(t, 3*time.Second, "more than the triggered run", func() bool { return len(e.runs("every2")) > before+1 })

	unpaused := e.do(http.MethodPost, "/v1/schedules/every2/unpause", "")
	require.Equal(t, http.StatusOK, unpaused.StatusCode)
	require.Equal(t, false, unpaused.JSON(t)["paused"])
	eventually(t, 10*time.Second, "runs again once unpaused", func() bool { return len(e.runs("every2")) >= before+2 })

	// Deleted, it starts no more; its jobs stay.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/v1/schedules/every2", "").StatusCode)
	requireProblem(t, e.do(http.MethodGet, "/v1/schedules/every2", ""), http.StatusNotFound, "not-found")
	_, err = e.Temporal.ScheduleClient().GetHandle(context.Background(), e.Tenant+":every2").Describe(context.Background())
	require.Error(t, err, "the Temporal schedule is gone")
	require.Equal(t, http.StatusSeeOther, e.do(http.MethodGet, "/v1/jobs/"+first, "").StatusCode)
}

func TestScheduleOverlapSkip(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	e.createSchedule(e.Tenant, `{"id":"slow","every":"2s","overlap":"skip","job":{"kind":"sleep","input":{"seconds":7}}}`)
	eventually(t, 20*time.Second, "a run skipped while the first one runs", func() bool {
		resp := e.do(http.MethodGet, "/v1/schedules/slow", "").JSON(t)
		return resp["skippedRuns"].(float64) >= 2
	})
	runs := e.runs("slow")
	require.Len(t, runs, 1, "no second run while the first one goes")
	require.Equal(t, "running", runs[0]["state"])
}

func TestScheduleBackfill(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	// Paused: only the backfill starts runs.
	e.createSchedule(e.Tenant, `{"id":"minutely","cron":"* * * * *","paused":true,"job":{"kind":"sleep","input":{"seconds":0}}}`)
	minute := time.Now().UTC().Truncate(time.Minute)
	from, to := minute.Add(-4*time.Minute-30*time.Second), minute.Add(-time.Minute-30*time.Second)
	resp := e.do(http.MethodPost, "/v1/schedules/minutely/backfill", mustJSON(t, map[string]any{"from": from, "to": to}))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "body: %s", resp.Body)
	eventually(t, 20*time.Second, "the range's three runs", func() bool { return len(e.runs("minutely")) >= 3 })
	quietFor(t, 3*time.Second, "more runs than the range has", func() bool { return len(e.runs("minutely")) > 3 })
	seen := map[string]bool{}
	for i, r := range e.runs("minutely") {
		require.Equal(t, minute.Add(time.Duration(i-4)*time.Minute), parseTime(t, r["scheduledAt"]), "run %d", i)
		id := r["jobId"].(string)
		require.False(t, seen[id], "job %s started twice", id)
		seen[id] = true
		e.waitState(id, job.StateSucceeded, workerRoundTrip)
	}
	requireProblem(t, e.do(http.MethodPost, "/v1/schedules/minutely/backfill", mustJSON(t, map[string]any{"from": to, "to": from})), http.StatusUnprocessableEntity, "invalid-input")
}

func TestScheduleValidationPatchAndCap(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, maxSchedules: 2})
	for name, body := range map[string]string{
		"cron of four fields":   `{"id":"bad","cron":"* * * *","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"cron and every":        `{"id":"bad","cron":"* * * * *","every":"1m","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"neither":               `{"id":"bad","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"every too short":       `{"id":"bad","every":"10ms","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"unknown time zone":     `{"id":"bad","every":"1m","timezone":"Mars/Olympus","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"unknown overlap":       `{"id":"bad","every":"1m","overlap":"sometimes","job":{"kind":"sleep","input":{"seconds":1}}}`,
		"invalid input":         `{"id":"bad","every":"1m","job":{"kind":"sleep","input":{"seconds":-1}}}`,
		"priority out of range": `{"id":"bad","every":"1m","job":{"kind":"sleep","input":{"seconds":1},"priority":9}}`,
		"bad id":                `{"id":"no/slash","every":"1m","job":{"kind":"sleep","input":{"seconds":1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			p := requireProblem(t, e.do(http.MethodPost, "/v1/schedules", body), http.StatusUnprocessableEntity, "invalid-input")
			// The errors are the schedule's: the detail does not blame the
			// job's kind.
			require.Equal(t, "The submission is incomplete or invalid; see errors.", p["detail"])
		})
	}
	requireProblem(t, e.do(http.MethodPost, "/v1/schedules", `{"id":"bad","every":"1m","job":{"kind":"nope"}}`), http.StatusUnprocessableEntity, "unknown-kind")
	requireProblem(t, e.do(http.MethodGet, "/v1/schedules/bad", ""), http.StatusNotFound, "not-found")

	e.createSchedule(e.Tenant, `{"id":"one","cron":"0 3 * * *","timezone":"Europe/Paris","job":{"kind":"sleep","input":{"seconds":1}}}`)
	requireProblem(t, e.do(http.MethodPost, "/v1/schedules", `{"id":"one","every":"1h","job":{"kind":"sleep","input":{"seconds":1}}}`), http.StatusConflict, "schedule-exists")
	generated := e.createSchedule(e.Tenant, `{"every":"1h","job":{"kind":"sleep","input":{"seconds":1}}}`)
	require.NotEmpty(t, generated["id"])

	// A merge patch: members replace, null removes, job merges.
	patched := e.do(http.MethodPatch, "/v1/schedules/one", `{"timezone":null,"job":{"priority":5,"input":{"seconds":2}},"overlap":"buffer_one"}`,
		"Content-Type", "application/merge-patch+json")
	require.Equal(t, http.StatusOK, patched.StatusCode, "body: %s", patched.Body)
	body := patched.JSON(t)
	require.Nil(t, body["timezone"])
	require.Equal(t, "0 3 * * *", body["cron"])
	require.Equal(t, "buffer_one", body["overlap"])
	require.Equal(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": float64(2)}, "priority": float64(5)}, body["job"])
	for _, next := range body["nextRunTimes"].([]any) {
		require.Equal(t, 3, parseTime(t, next).UTC().Hour(), "runs at 03:00 UTC once the time zone is gone")
	}
	requireProblem(t, e.do(http.MethodPatch, "/v1/schedules/one", `{"every":"1m"}`), http.StatusUnprocessableEntity, "invalid-input")
	require.Equal(t, "0 3 * * *", e.do(http.MethodGet, "/v1/schedules/one", "").JSON(t)["cron"], "a refused patch changes nothing")

	// The cap, once visibility counts both.
	eventually(t, 15*time.Second, "both schedules listed", func() bool {
		list, _ := e.do(http.MethodGet, "/v1/schedules", "").JSON(t)["schedules"].([]any)
		return len(list) == 2
	})
	resp := e.do(http.MethodPost, "/v1/schedules", `{"id":"three","every":"1h","job":{"kind":"sleep","input":{"seconds":1}}}`)
	requireProblem(t, resp, http.StatusTooManyRequests, "too-many-schedules")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

func TestScheduleTenantIsolation(t *testing.T) {
	t.Parallel()
	a, b := fmt.Sprintf("sa-%d", time.Now().UnixNano()), fmt.Sprintf("sb-%d", time.Now().UnixNano())
	e := mustStartEnv(t, envOptions{apiKeys: map[string]string{a: "key-a-" + a, b: "key-b-" + b}})
	authA, authB := []string{"Authorization", "Bearer key-a-" + a}, []string{"Authorization", "Bearer key-b-" + b}
	e.createSchedule(a, `{"id":"mine","every":"2s","job":{"kind":"sleep","input":{"seconds":0}}}`, authA...)
	eventually(t, 20*time.Second, "a run of a's schedule", func() bool { return len(e.runs("mine", authA...)) >= 1 })
	run := e.runs("mine", authA...)[0]["jobId"].(string)

	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/schedules/mine", ""},
		{http.MethodPatch, "/v1/schedules/mine", `{"every":"1h"}`},
		{http.MethodDelete, "/v1/schedules/mine", ""},
		{http.MethodPost, "/v1/schedules/mine/pause", ""},
		{http.MethodPost, "/v1/schedules/mine/unpause", ""},
		{http.MethodPost, "/v1/schedules/mine/trigger", ""},
		{http.MethodPost, "/v1/schedules/mine/backfill", `{"from":"2020-01-01T00:00:00Z","to":"2020-01-01T00:01:00Z"}`},
		{http.MethodGet, "/v1/jobs/" + run, ""},
	} {
		requireProblem(t, e.do(req.method, req.path, req.body, authB...), http.StatusNotFound, "not-found")
	}
	list, _ := e.do(http.MethodGet, "/v1/schedules", "", authB...).JSON(t)["schedules"].([]any)
	require.Empty(t, list)
	jobs, _ := e.do(http.MethodGet, "/v1/jobs?scheduleId=mine", "", authB...).JSON(t)["jobs"].([]any)
	require.Empty(t, jobs)
	// b may have a schedule of the same id, its own.
	e.createSchedule(b, `{"id":"mine","every":"1h","paused":true,"job":{"kind":"sleep","input":{"seconds":0}}}`, authB...)
	require.Equal(t, "2s", e.do(http.MethodGet, "/v1/schedules/mine", "", authA...).JSON(t)["every"])
	require.Equal(t, "1h0m0s", e.do(http.MethodGet, "/v1/schedules/mine", "", authB...).JSON(t)["every"])
}

func TestScheduleSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dataDir := t.TempDir()
	ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
	first := startProcess(t, dataDir, ports)
	api := processEnv(t, ports.http)
	resp := api.do(http.MethodPost, "/v1/schedules", `{"id":"durable","every":"2s","job":{"kind":"sleep","input":{"seconds":0}}}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "body: %s", resp.Body)
	eventually(t, 30*time.Second, "a run before the restart", func() bool {
		resp := api.do(http.MethodGet, "/v1/schedules/durable", "")
		return resp.StatusCode == http.StatusOK && len(resp.JSON(t)["recentRuns"].([]any)) >= 1
	})

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	<-first.done
	first.done <- nil
	restarted := time.Now()
	startProcess(t, dataDir, ports)
	// The restarted server may answer 503 for a moment while it loads.
	var runs []any
	eventually(t, 60*time.Second, "a run after the restart", func() bool {
		resp := api.do(http.MethodGet, "/v1/schedules/durable", "")
		if resp.StatusCode != http.StatusOK {
			return false
		}
		runs = resp.JSON(t)["recentRuns"].([]any)
		return len(runs) > 0 && parseTime(t, runs[len(runs)-1].(map[string]any)["scheduledAt"]).After(restarted)
	})
	last := runs[len(runs)-1].(map[string]any)["jobId"].(string)
	eventually(t, 30*time.Second, "the run succeeded", func() bool {
		return api.do(http.MethodGet, "/v1/jobs/"+last, "").StatusCode == http.StatusSeeOther
	})
	c, err := temporalclient.Dial(temporalclient.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", ports.temporal), Logger: quietLogger{}})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.ScheduleClient().GetHandle(context.Background(), "default:durable").Delete(context.Background()))
}

// The Go client drives delays, priorities, reruns and schedules.
func TestClientTimeAndSchedules(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{})
	c := mustClient(t, e, client.WithLongPoll(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	j, err := c.Submit(ctx, client.SubmitRequest{Kind: "sleep", Input: map[string]int{"seconds": 0}, Delay: 2 * time.Second, Priority: 1})
	require.NoError(t, err)
	require.Equal(t, client.StateScheduled, j.State)
	require.NotNil(t, j.ScheduledFor)
	require.Equal(t, 1, j.Priority)
	done, err := c.Wait(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, client.StateSucceeded, done.State)
	require.False(t, done.StartedAt.Before(*j.ScheduledFor))

	again, err := c.Rerun(ctx, j.ID, map[string]int{"seconds": 1}, "")
	require.NoError(t, err)
	require.Equal(t, j.ID, again.RerunOf)
	require.Equal(t, 1, again.Priority)

	sc, err := c.CreateSchedule(ctx, client.ScheduleSpec{ID: "viaclient", Every: "1h", Paused: true, Job: client.ScheduleJob{Kind: "sleep", Input: map[string]int{"seconds": 0}}})
	require.NoError(t, err)
	e.t.Cleanup(func() {
		_ = e.Temporal.ScheduleClient().GetHandle(context.Background(), e.Tenant+":viaclient").Delete(context.Background())
	})
	require.True(t, sc.Paused)
	_, err = c.CreateSchedule(ctx, client.ScheduleSpec{ID: "viaclient", Every: "1h", Job: client.ScheduleJob{Kind: "sleep", Input: map[string]int{"seconds": 0}}})
	require.ErrorIs(t, err, client.ErrConflict)
	sc, err = c.UpdateSchedule(ctx, "viaclient", map[string]any{"every": "30m"})
	require.NoError(t, err)
	require.Equal(t, "30m0s", sc.Every)
	_, err = c.TriggerSchedule(ctx, "viaclient")
	require.NoError(t, err)
	eventually(t, 20*time.Second, "the triggered run", func() bool {
		sc, err := c.GetSchedule(ctx, "viaclient")
		return err == nil && len(sc.RecentRuns) == 1
	})
	sc, err = c.PauseSchedule(ctx, "viaclient", false)
	require.NoError(t, err)
	require.False(t, sc.Paused)
	require.NoError(t, c.DeleteSchedule(ctx, "viaclient"))
	_, err = c.GetSchedule(ctx, "viaclient")
	require.ErrorIs(t, err, client.ErrNotFound)
}
