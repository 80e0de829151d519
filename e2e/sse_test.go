package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sseEvent is one event of a job's event stream: its id, its type
// ("status" or "error") and its data, decoded from JSON.
type sseEvent struct {
	id, event string
	data      map[string]any
}

// sseReader reads a text/event-stream one event at a time, as the
// EventSource algorithm does: fields up to a blank line make an event,
// comments (": keep-alive") and blocks with no data (the retry hint) are
// skipped, several data lines are joined with newlines, and an event cut
// off by the stream's end is dropped. It is the one parser of jobgate's
// event streams in these tests.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &sseReader{sc: sc}
}

// next returns the stream's next event, or io.EOF at its end.
func (r *sseReader) next() (sseEvent, error) {
	var (
		ev   sseEvent
		data []string
	)
	for r.sc.Scan() {
		line := r.sc.Text()
		if line == "" {
			if data == nil {
				ev = sseEvent{}
				continue
			}
			if ev.event == "" {
				ev.event = "message"
			}
			if err := jsonUnmarshal(strings.Join(data, "\n"), &ev.data); err != nil {
				return sseEvent{}, fmt.Errorf("event %q (id %q): data %q: %w", ev.event, ev.id, strings.Join(data, "\n"), err)
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}

// streamEvents reads a job's event stream to its end, sending
// Last-Event-ID when lastEventID is set, and returns its status events.
// It fails, rather than returning, on an answer other than a 200 stream
// and on an error event; it does not call t.FailNow, so it can run in a
// goroutine.
func (e *env) streamEvents(ctx context.Context, id, lastEventID string) ([]sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("the event stream of %s answered %d: %s", id, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		return nil, fmt.Errorf("the event stream of %s has Content-Type %q", id, ct)
	}
	var out []sseEvent
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		switch {
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return out, fmt.Errorf("the event stream of %s: %w", id, err)
		case ev.event != "status":
			return out, fmt.Errorf("the event stream of %s sent a %q event: %v", id, ev.event, ev.data)
		}
		out = append(out, ev)
	}
}

// readEvents reads a job's event stream to its end and returns its status
// events (streamEvents, required to succeed).
func (e *env) readEvents(t testing.TB, id, lastEventID string) []sseEvent {
	t.Helper()
	events, err := e.streamEvents(context.Background(), id, lastEventID)
	require.NoError(t, err)
	return events
}

// lastEvent reads a job's event stream to its end and returns the last
// event's data.
func (e *env) lastEvent(id string) map[string]any {
	e.t.Helper()
	events := e.readEvents(e.t, id, "")
	require.NotEmpty(e.t, events, "the stream sent no event")
	return events[len(events)-1].data
}

// A stream's events are parsed as EventSource would: comments, the retry
// hint and an event cut off by the end are not events; multi-line data
// is joined; a status event and an error event keep their types; data
// that is not JSON is an error naming the event.
func TestSSEReader(t *testing.T) {
	t.Parallel()
	const stream = "retry: 2000\n\n" +
		"id: 1\nevent: status\ndata: {\"state\":\"queued\"}\n\n" +
		": keep-alive\n\n" +
		"id: 2\nevent: status\ndata: {\"state\":\ndata: \"running\"}\n\n" +
		"event: error\ndata: {\"status\":503}\n\n" +
		"data:{\"nospace\":true}\n\n" +
		"id: 9\nevent: status\ndata: {\"state\":\"cut\"}\n"
	r := newSSEReader(strings.NewReader(stream))
	var got []sseEvent
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, ev)
	}
	require.Equal(t, []sseEvent{
		{id: "1", event: "status", data: map[string]any{"state": "queued"}},
		{id: "2", event: "status", data: map[string]any{"state": "running"}},
		{event: "error", data: map[string]any{"status": float64(503)}},
		{event: "message", data: map[string]any{"nospace": true}},
	}, got)

	_, err := newSSEReader(strings.NewReader("id: 3\nevent: status\ndata: {\"state\"\n\n")).next()
	require.ErrorContains(t, err, `event "status" (id "3")`)
}
