package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/webhook"
	"github.com/jobgate/jobgate/workflows"
)

// Webhooks is what delivering jobs' webhooks needs.
type Webhooks struct {
	// Secrets are the tenants' whsec_ signing secrets, by tenant. A job
	// whose tenant has none gets no webhook (its callback ends failed).
	Secrets map[string]string
	// Outbound checks the receivers' addresses, as for http.request.
	Outbound Outbound
	// Load reads a job's status as the API does.
	Load func(ctx context.Context, tenant, id string) (*job.Job, error)
	// Render renders a status as GET /v1/jobs/{id}?redirect=false answers
	// it (the payload's data).
	Render func(j *job.Job) any
	// Now is the clock of webhook-timestamp (default time.Now).
	Now func() time.Time

	once   sync.Once
	client *http.Client
}

// webhookTimeout bounds one delivery attempt.
const webhookTimeout = 30 * time.Second

// webhookReadLimit bounds what is read of a receiver's answer, which is
// discarded.
const webhookReadLimit = 64 << 10

// Payload is a webhook's body: the event, when it happened, and the job's
// status.
type Payload struct {
	// Type is job.succeeded, job.failed, job.canceled or job.waiting.
	Type string `json:"type"`
	// Timestamp is when the job ended.
	Timestamp time.Time `json:"timestamp"`
	// Data is the job's status body.
	Data any `json:"data"`
}

// RenderWebhook is the activity that renders a finished job's webhook
// once, so that every retry sends the same body under the same id. It is
// retried until the job's workflow has closed.
func (w *Worker) RenderWebhook(ctx context.Context, in workflows.WebhookInput) (workflows.WebhookMessage, error) {
	wh := w.Webhooks
	if wh == nil || wh.Load == nil || wh.Render == nil {
		return workflows.WebhookMessage{}, temporal.NewNonRetryableApplicationError("this worker does not deliver webhooks", "webhooks-disabled", nil)
	}
	j, err := wh.Load(ctx, in.Tenant, in.JobID)
	if err != nil {
		if errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrExpired) {
			return workflows.WebhookMessage{}, temporal.NewNonRetryableApplicationError(err.Error(), "job-gone", nil)
		}
		return workflows.WebhookMessage{}, err
	}
	if in.Event == workflows.EventWaiting {
		// job.waiting: the status as it stands, waiting for the input.
		body, err := json.Marshal(Payload{Type: "job.waiting", Timestamp: time.Now().UTC(), Data: wh.Render(j)})
		if err != nil {
			return workflows.WebhookMessage{}, temporal.NewNonRetryableApplicationError("encode the webhook: "+err.Error(), "invalid-payload", nil)
		}
		return workflows.WebhookMessage{ID: MessageID(j.ID, job.State("waiting")) + "_" + strconv.Itoa(in.Seq), Body: body}, nil
	}
	if !j.State.Terminal() {
		return workflows.WebhookMessage{}, fmt.Errorf("job %s is still %s; waiting for it to close", j.ID, j.State)
	}
	// The data is the status as it stood before the first attempt.
	j.Callback = &job.Callback{State: job.CallbackPending}
	body, err := json.Marshal(Payload{Type: "job." + string(j.State), Timestamp: j.CompletedAt.UTC(), Data: wh.Render(j)})
	if err != nil {
		return workflows.WebhookMessage{}, temporal.NewNonRetryableApplicationError("encode the webhook: "+err.Error(), "invalid-payload", nil)
	}
	return workflows.WebhookMessage{ID: MessageID(j.ID, j.State), Body: body}, nil
}

// MessageID is the webhook-id of a job's webhook for its final state: the
// same on every retry, so receivers can drop duplicates.
func MessageID(jobID string, state job.State) string {
	return "msg_" + strings.ReplaceAll(jobID, "-", "") + "_" + string(state)
}

// DeliverWebhook is the activity that posts a rendered webhook, signed
// with the tenant's secret and a fresh timestamp. A 2xx answer delivers
// it; 410, a refused destination or a missing secret end delivery; other
// answers and network errors are retried by the workflow's policy (a
// Retry-After is honoured). Every failure carries the attempt as details.
func (w *Worker) DeliverWebhook(ctx context.Context, in workflows.WebhookInput, msg workflows.WebhookMessage) (workflows.WebhookAttempt, error) {
	wh := w.Webhooks
	now := time.Now
	if wh != nil && wh.Now != nil {
		now = wh.Now
	}
	attempt := workflows.WebhookAttempt{Attempt: int(activity.GetInfo(ctx).Attempt), At: now().UTC()}
	fail := func(typ string, retryable bool, delay time.Duration, format string, args ...any) error {
		attempt.At = now().UTC()
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, args...), typ, temporal.ApplicationErrorOptions{
			NonRetryable: !retryable, Details: []any{attempt}, NextRetryDelay: delay,
		})
	}
	if wh == nil {
		return attempt, fail("webhooks-disabled", false, 0, "this worker does not deliver webhooks")
	}
	secret, ok := wh.Secrets[in.Tenant]
	if !ok {
		return attempt, fail(workflows.WebhookNoKey, false, 0, "no webhook signing secret is configured for this tenant (JOBGATE_WEBHOOK_SECRETS)")
	}
	ts := now()
	sig, err := webhook.Sign(secret, msg.ID, ts, msg.Body)
	if err != nil {
		return attempt, fail(workflows.WebhookNoKey, false, 0, "the tenant's signing secret is unusable: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.URL, bytes.NewReader(msg.Body))
	if err != nil {
		return attempt, fail(workflows.WebhookRefused, false, 0, "the callback URL cannot be used: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jobgate")
	req.Header.Set(webhook.HeaderID, msg.ID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := wh.httpClient().Do(req)
	if err != nil {
		if errors.Is(err, ErrDestinationRefused) {
			return attempt, fail(workflows.WebhookRefused, false, 0, "%v", describe(err))
		}
		return attempt, fail("network", true, 0, "POST %s: %v", logURL(req.URL), describe(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, webhookReadLimit))
	_ = resp.Body.Close()
	attempt.Status = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		attempt.At = now().UTC()
		return attempt, nil
	case resp.StatusCode == http.StatusGone:
		return attempt, fail(workflows.WebhookGone, false, 0, "the receiver answered 410 Gone: it wants no more webhooks")
	}
	delay, _ := retryAfter(resp.Header.Get("Retry-After"), now())
	return attempt, fail("http-"+strconv.Itoa(resp.StatusCode), true, min(delay, workflows.WebhookMaxRetry),
		"the receiver answered %s", resp.Status)
}

func (wh *Webhooks) httpClient() *http.Client {
	wh.once.Do(func() { wh.client = wh.Outbound.client() })
	return wh.client
}
