package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

func memoOf(t *testing.T, fields map[string]any) *commonpb.Memo {
	t.Helper()
	m := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range fields {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		require.NoError(t, err)
		m.Fields[k] = p
	}
	return m
}

// A job reads from the memo the API writes at submission.
func TestJobFromMemo(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.UTC)
	want := &job.Job{ID: "j1", Attempt: 1, Tenant: "acme", Fingerprint: "f00d", CreatedAt: created,
		EstimatedCompletion: created.Add(1500 * time.Millisecond), Callback: &job.Callback{State: job.CallbackPending}}

	current := memoOf(t, map[string]any{workflows.MemoJob: workflows.JobMemo{Tenant: "acme", CreatedAt: created, ExpectedMillis: 1500,
		RequestID: "r1", Callback: true, Fingerprint: "f00d"}})
	got, _, err := jobFromMemo("j1", current)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// An unkeyed job without a callback.
	got, _, err = jobFromMemo("j2", memoOf(t, map[string]any{workflows.MemoJob: workflows.JobMemo{Tenant: "acme", CreatedAt: created}}))
	require.NoError(t, err)
	require.Empty(t, got.Fingerprint)
	require.Nil(t, got.Callback)
	require.Equal(t, created, got.EstimatedCompletion)

	// A workflow kind's job says so.
	_, flow, err := jobFromMemo("j3", memoOf(t, map[string]any{workflows.MemoJob: workflows.JobMemo{Tenant: "acme", CreatedAt: created, Workflow: true}}))
	require.NoError(t, err)
	require.True(t, flow)

	// A workflow jobgate did not start.
	_, _, err = jobFromMemo("x", memoOf(t, map[string]any{"other": 1}))
	require.ErrorContains(t, err, "was it started by jobgate?")
	_, _, err = jobFromMemo("x", nil)
	require.Error(t, err)
}
