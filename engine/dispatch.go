package engine

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/job"
)

// dispatch is the Temporal priority of a tenant's job: the job's priority
// as the priority key, and the tenant as the fairness key with its weight,
// so that matching hands worker slots out between tenants in proportion to
// their weights instead of first come, first served. The job's activities,
// child workflows (child jobs, its webhook, its cleanup) inherit it from
// the workflow. Where the server runs without fairness
// (matching.enableFairness off), the key and weight are carried and
// ignored: dispatch is then by priority, then age.
func dispatch(tenant string, priority int, weight float64) temporal.Priority {
	p := temporal.Priority{PriorityKey: priorityOf(priority), FairnessKey: fairnessKey(tenant)}
	if weight > 0 {
		p.FairnessWeight = float32(weight)
	}
	return p
}

// priorityOf is priority with the default for 0.
func priorityOf(priority int) int {
	if priority == 0 {
		return job.DefaultPriority
	}
	return priority
}

// fairnessKey is the tenant as a fairness key, which Temporal limits to 64
// bytes; tenants are at most 64 characters of a plain alphabet.
func fairnessKey(tenant string) string {
	if len(tenant) > 64 {
		return tenant[:64]
	}
	return tenant
}

// startOf is how a job accepted at now with start time runAt starts: the
// start delay (0 for a zero or past runAt), its state then (scheduled while
// delayed, else queued) and when it starts.
func startOf(runAt, now time.Time) (time.Duration, job.State, time.Time) {
	if runAt.IsZero() || !runAt.After(now) {
		return 0, job.StateQueued, now
	}
	return runAt.Sub(now), job.StateScheduled, runAt
}

// scheduledFor is a job's ScheduledFor: its start time when it was
// delayed, zero when it started at once.
func scheduledFor(delay time.Duration, startsAt time.Time) time.Time {
	if delay <= 0 {
		return time.Time{}
	}
	return startsAt
}

// untilStart adjusts a job read from Temporal for its start time: one
// still waiting for it is scheduled, one whose time has come but that no
// worker has picked up is queued, and its estimated completion counts from
// its start. executionTime is Temporal's ExecutionTime (the start plus the
// start delay); startTime its StartTime.
func untilStart(j *job.Job, startTime, executionTime, now time.Time) {
	if !executionTime.After(startTime.Add(time.Millisecond)) {
		return
	}
	j.ScheduledFor = executionTime
	if expected := j.EstimatedCompletion.Sub(j.CreatedAt); expected >= 0 {
		j.EstimatedCompletion = executionTime.Add(expected)
	}
	if j.State == job.StateScheduled && !now.Before(executionTime) {
		j.State = job.StateQueued
	}
}
