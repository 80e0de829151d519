package main

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// historyCounts is what one workflow's history holds: what a job pays in
// events and search-attribute upserts (each upsert is one more write of
// the visibility record) beside a bare workflow.
type historyCounts struct {
	Events        int
	Upserts       int
	Markers       int
	WorkflowTasks int
	ActivityTasks int
}

// countHistory counts the events of workflow id's history.
func countHistory(ctx context.Context, c client.Client, id string) (historyCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var h historyCounts
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return h, fmt.Errorf("history of %s: %w", id, err)
		}
		h.Events++
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			h.Upserts++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			h.Markers++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			h.WorkflowTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			h.ActivityTasks++
		}
	}
	return h, nil
}

// sampleHistory counts the history of the first of ids, and logs it.
func sampleHistory(ctx context.Context, c client.Client, what string, ids []string) (historyCounts, error) {
	if len(ids) == 0 {
		return historyCounts{}, fmt.Errorf("no %s to count the history of", what)
	}
	h, err := countHistory(ctx, c, ids[0])
	if err == nil {
		logf("history of one %s: %d events, %d search-attribute upserts, %d markers, %d workflow tasks, %d activity tasks",
			what, h.Events, h.Upserts, h.Markers, h.WorkflowTasks, h.ActivityTasks)
	}
	return h, err
}
