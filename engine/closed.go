package engine

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
)

// waitClosed blocks until the workflow of job id closes, with Temporal's
// own long-poll of its history filtered to the close event, and returns
// nil then; it returns ctx's error when ctx ends first, or the failure of
// the long-poll. It is how the end of a job reaches long-polls, event
// streams and waiting submissions without polling.
func (s *Service) waitClosed(ctx context.Context, id string) error {
	it := s.c.GetWorkflowHistory(ctx, id, "", true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return err
		}
		if ev != nil {
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("job %s: its history ended without a close event", id)
}
