package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/webhook"
)

// receiver is a local webhook receiver that answers each delivery with the
// next of its statuses (the last one from then on) and keeps what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []delivery
}

type delivery struct {
	header http.Header
	body   []byte
}

func mustStartReceiver(tb testing.TB, statuses ...int) *receiver {
	tb.Helper()
	rc := &receiver{statuses: statuses}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := rc.statuses[min(len(rc.got), len(rc.statuses)-1)]
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body})
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// callbackOf polls the job's status until its callback is in state, and
// returns the status body.
func (e *env) callbackOf(id string, state job.CallbackState, limit time.Duration) map[string]any {
	e.t.Helper()
	var body map[string]any
	eventually(e.t, limit, "callback "+string(state), func() bool {
		body = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(e.t)
		cb, _ := body["callback"].(map[string]any)
		return cb != nil && cb["state"] == string(state)
	})
	return body
}

// A webhook is signed per Standard Webhooks (checked with the reference
// library), retried after a 500 with the same webhook-id and body, and
// delivered; its data is the job's status as GET shows it, and the job's
// callback field follows the delivery.
func TestWebhookRetriedAndDelivered(t *testing.T) {
	t.Parallel()
	rc := mustStartReceiver(t, http.StatusInternalServerError, http.StatusNoContent)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, accepted := e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 0}, "callbackUrl": rc.URL + "/hooks"}))
	require.Equal(t, map[string]any{"state": "pending", "attempts": 0.0}, accepted.JSON(t)["callback"])

	pending := e.callbackOf(id, job.CallbackPending, 15*time.Second)
	eventually(t, 15*time.Second, "first attempt failed", func() bool {
		pending = e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(t)
		return pending["callback"].(map[string]any)["attempts"] == 1.0
	})
	cb := pending["callback"].(map[string]any)
	require.Equal(t, "pending", cb["state"])
	require.EqualValues(t, 500, cb["lastStatus"])
	require.Contains(t, cb["lastError"], "500")
	require.NotEmpty(t, cb["nextAttemptAt"])

	final := e.callbackOf(id, job.CallbackDelivered, 30*time.Second)
	cb = final["callback"].(map[string]any)
	require.EqualValues(t, 2, cb["attempts"])
	require.EqualValues(t, 204, cb["lastStatus"])
	require.NotEmpty(t, cb["lastAttemptAt"])

	got := rc.deliveries()
	require.Len(t, got, 2)
	wh, err := standardwebhooks.NewWebhook(e.WebhookSecret)
	require.NoError(t, err)
	for _, d := range got {
		require.NoError(t, wh.Verify(d.body, d.header), "signature verifies")
		require.Equal(t, "application/json", d.header.Get("Content-Type"))
	}
	require.Equal(t, got[0].header.Get("webhook-id"), got[1].header.Get("webhook-id"), "webhook-id stable across retries")
	require.Equal(t, got[0].body, got[1].body, "the same message on every retry")
	require.Contains(t, got[0].header.Get("webhook-signature"), "v1,")

	// A tampered body or another secret does not verify.
	require.Error(t, wh.Verify(append(got[1].body[:len(got[1].body)-1:len(got[1].body)-1], ' ', '}'), got[1].header))
	other, err := standardwebhooks.NewWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	require.Error(t, other.Verify(got[1].body, got[1].header))

	var payload struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got[0].body, &payload))
	require.Equal(t, "job.succeeded", payload.Type)
	// data is what GET ?redirect=false answers, but for the callback,
	// which it shows as it stood before the first attempt.
	var data map[string]any
	require.NoError(t, json.Unmarshal(payload.Data, &data))
	require.Equal(t, map[string]any{"state": "pending", "attempts": 0.0}, data["callback"])
	status := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "").JSON(t)
	delete(data, "callback")
	delete(status, "callback")
	require.Equal(t, status, data)
	completed, err := time.Parse(time.RFC3339Nano, status["completedAt"].(string))
	require.NoError(t, err)
	require.True(t, payload.Timestamp.Equal(completed), "the event's time is the job's completion")
}

// A 410 from the receiver stops delivery: the callback is gone and no
// further attempt follows. A canceled job's webhook says job.canceled.
func TestWebhookGoneStopsDelivery(t *testing.T) {
	t.Parallel()
	rc := mustStartReceiver(t, http.StatusInternalServerError, http.StatusGone)
	e := mustStartEnv(t, envOptions{allowPrivate: true})
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 600}, "callbackUrl": rc.URL}))
	e.waitState(id, job.StateRunning, workerRoundTrip)
	require.Equal(t, http.StatusAccepted, e.do(http.MethodDelete, "/v1/jobs/"+id, "").StatusCode)

	body := e.callbackOf(id, job.CallbackGone, 30*time.Second)
	require.Equal(t, "canceled", body["state"])
	cb := body["callback"].(map[string]any)
	require.EqualValues(t, 2, cb["attempts"])
	require.EqualValues(t, 410, cb["lastStatus"])
	got := rc.deliveries()
	require.Len(t, got, 2, "no attempt after the 410")

	wh, err := standardwebhooks.NewWebhook(e.WebhookSecret)
	require.NoError(t, err)
	require.NoError(t, wh.Verify(got[1].body, got[1].header))
	var payload struct{ Type string }
	require.NoError(t, json.Unmarshal(got[1].body, &payload))
	require.Equal(t, "job.canceled", payload.Type)
	// The delivery workflow has closed: nothing else will be sent.
	eventually(t, 10*time.Second, "webhook workflow completed", func() bool {
		desc, err := e.Temporal.DescribeWorkflowExecution(t.Context(), id+":webhook", "")
		require.NoError(t, err)
		return desc.GetWorkflowExecutionInfo().GetStatus().String() == "Completed"
	})
}

// Webhooks to loopback are refused at connect time when private targets
// are not allowed: the callback fails at once, nothing is sent.
func TestWebhookRefusesLoopback(t *testing.T) {
	t.Parallel()
	rc := mustStartReceiver(t, http.StatusOK)
	e := mustStartEnv(t, envOptions{allowPrivate: false})
	url := "http://localhost:" + rc.URL[len("http://127.0.0.1:"):]
	id, _ := e.submit(mustJSON(t, map[string]any{"kind": "sleep", "input": map[string]any{"seconds": 0}, "callbackUrl": url}))
	body := e.callbackOf(id, job.CallbackFailed, 20*time.Second)
	require.Equal(t, "succeeded", body["state"], "the job's own outcome stands")
	cb := body["callback"].(map[string]any)
	require.EqualValues(t, 1, cb["attempts"])
	require.Contains(t, cb["lastError"], "not a public address")
	require.Empty(t, rc.deliveries())
}

// A tenant without a signing secret (only another tenant has one) cannot
// ask for webhooks.
func TestWebhookNeedsASecret(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true, webhookSecrets: map[string]string{"another-tenant": webhook.NewSecret()}})
	p := requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1},"callbackUrl":"https://client.example/hooks"}`),
		http.StatusUnprocessableEntity, "invalid-input")
	require.Equal(t, "/callbackUrl", p["errors"].([]any)[0].(map[string]any)["field"])
	requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1},"callbackUrl":"ftp://client.example/hooks"}`),
		http.StatusUnprocessableEntity, "invalid-input")
}
