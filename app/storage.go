package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"path/filepath"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/internal/secretfile"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/webhook"
	"github.com/jobgate/jobgate/worker"
)

// maxResultBlobThreshold keeps inline results well under Temporal's
// payload limits.
const maxResultBlobThreshold = 1 << 20

// checkStorage checks the blob and webhook configuration and derives the
// blob URL. lookup reads the environment (to tell a data directory that
// was set from the default).
func (c *Config) checkStorage(lookup func(string) (string, bool)) error {
	if c.ResultBlobThreshold < 0 || c.ResultBlobThreshold > maxResultBlobThreshold {
		return fmt.Errorf("JOBGATE_RESULT_BLOB_THRESHOLD must be between 0 and %d bytes, not %d", maxResultBlobThreshold, c.ResultBlobThreshold)
	}
	c.blobURL = c.BlobURL
	if c.blobURL == "" {
		if _, set := lookup("JOBGATE_DATA_DIR"); c.Role != "all" && !set {
			return fmt.Errorf("JOBGATE_ROLE=%s needs JOBGATE_BLOB_URL (such as s3://bucket?region=eu-west-1, gs://bucket or file:///shared/blobs), "+
				"or JOBGATE_DATA_DIR on a volume that API and workers share: results and exports written by workers are read by the API", c.Role)
		}
		dir, err := filepath.Abs(filepath.Join(c.DataDir, "blobs"))
		if err != nil {
			return fmt.Errorf("JOBGATE_DATA_DIR %q: %w", c.DataDir, err)
		}
		c.blobURL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	}
	secrets, err := webhook.ParseSecrets(c.WebhookSecrets)
	if err != nil {
		return fmt.Errorf("JOBGATE_WEBHOOK_SECRETS: %w", err)
	}
	c.webhookSecrets = secrets
	// In local mode without secrets, each process generates tenant
	// default's secret in its data directory: split processes that do not
	// share one would sign with a secret the API never printed.
	if _, set := lookup("JOBGATE_DATA_DIR"); c.Role != "all" && len(secrets) == 0 && len(c.apiKeys) == 0 && !set {
		return fmt.Errorf("JOBGATE_ROLE=%s without API keys needs JOBGATE_WEBHOOK_SECRETS (default:whsec_…, the same on API and workers), "+
			"or JOBGATE_DATA_DIR on a volume that API and workers share: workers sign webhooks with the secret the API hands out", c.Role)
	}
	return c.checkDeploymentSecret(lookup)
}

// minDeploymentSecret is the shortest JOBGATE_DEPLOYMENT_SECRET accepted.
const minDeploymentSecret = 32

// checkDeploymentSecret checks JOBGATE_DEPLOYMENT_SECRET and that an API
// without it generates one only where every API instance reads the same:
// with the embedded Temporal server (one API), or in an explicit data
// directory, which several instances share as a volume. API instances
// with different secrets would give one Idempotency-Key different jobs.
func (c *Config) checkDeploymentSecret(lookup func(string) (string, bool)) error {
	if c.DeploymentSecret != "" {
		if len(c.DeploymentSecret) < minDeploymentSecret {
			return fmt.Errorf("JOBGATE_DEPLOYMENT_SECRET must be at least %d characters, not %d (make one with: head -c 32 /dev/urandom | base64)", minDeploymentSecret, len(c.DeploymentSecret))
		}
		return nil
	}
	if _, set := lookup("JOBGATE_DATA_DIR"); !c.runsAPI() || c.embedded() || set {
		return nil
	}
	return fmt.Errorf("JOBGATE_ROLE=%s with an external Temporal needs JOBGATE_DEPLOYMENT_SECRET (at least %d characters, the same on every API instance; "+
		"make one with: head -c 32 /dev/urandom | base64), or JOBGATE_DATA_DIR on a volume that every API instance shares: "+
		"job ids of Idempotency-Keys are keyed by it, so instances with different secrets would start two jobs for one key", c.Role, minDeploymentSecret)
}

// openBlobs opens the blob store of large results, exports and batch
// checkpoints, each tenant held to its quota.
func openBlobs(ctx context.Context, cfg Config, out io.Writer) (*blob.Store, error) {
	blobs, err := blob.Open(ctx, cfg.blobURL)
	if err != nil {
		return nil, fmt.Errorf("JOBGATE_BLOB_URL: %w", err)
	}
	blobs.LimitTenants(cfg.blobQuota)
	fmt.Fprintf(out, "jobgate: blob storage at %s (results over %d bytes, exports, batch checkpoints)\n", blobs, cfg.ResultBlobThreshold)
	return blobs, nil
}

// webhookSecrets are the webhook signing secrets by tenant.
type webhookSecrets map[string]string

// loadWebhookSecrets is JOBGATE_WEBHOOK_SECRETS or, in local mode (no API
// keys) without it, local's secret, loaded from the data directory or
// created there.
func loadWebhookSecrets(cfg Config, local string, out io.Writer) (webhookSecrets, error) {
	if len(cfg.webhookSecrets) > 0 || len(cfg.apiKeys) > 0 {
		return cfg.webhookSecrets, nil
	}
	path := filepath.Join(cfg.DataDir, "webhook-secret")
	secret, err := webhook.LoadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("webhook signing secret: %w (or set JOBGATE_WEBHOOK_SECRETS)", err)
	}
	fmt.Fprintf(out, "jobgate: webhooks of tenant %q are signed with the secret in %s\n", local, path)
	return webhookSecrets{local: secret}, nil
}

// signs reports whether webhooks can be signed for tenant.
func (s webhookSecrets) signs(tenant string) bool {
	_, ok := s[tenant]
	return ok
}

// loadDeploymentSecret is JOBGATE_DEPLOYMENT_SECRET, or the secret kept in
// the data directory, generated the first time.
func loadDeploymentSecret(cfg Config, out io.Writer) ([]byte, error) {
	if cfg.DeploymentSecret != "" {
		return []byte(cfg.DeploymentSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "deployment-secret")
	secret, err := loadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("deployment secret: %w (or set JOBGATE_DEPLOYMENT_SECRET)", err)
	}
	fmt.Fprintf(out, "jobgate: job ids of Idempotency-Keys are keyed by the secret in %s (keep it with the data; set JOBGATE_DEPLOYMENT_SECRET to share one)\n", path)
	return []byte(secret), nil
}

// loadOrCreateSecret reads the secret kept at path, or writes a new one
// there (mode 0600) when there is none. Processes that start together on
// a shared volume all read the one that the first wrote.
func loadOrCreateSecret(path string) (string, error) {
	newSecret := func() string {
		var b [32]byte
		_, _ = rand.Read(b[:])
		return base64.StdEncoding.EncodeToString(b[:])
	}
	return secretfile.LoadOrCreate(path, newSecret, func(secret string) error {
		if len(secret) < minDeploymentSecret {
			return fmt.Errorf("%s holds %d characters, fewer than %d: restore it from a backup, or delete it for a new one (which changes the job of every Idempotency-Key)", path, len(secret), minDeploymentSecret)
		}
		return nil
	})
}

// outbound checks and limits http.request's, batch.http's and webhooks'
// requests; they never reach reserved.
func outbound(cfg Config, reserved *activities.Reserved) activities.Outbound {
	return activities.Outbound{AllowPrivate: cfg.AllowPrivateTargets, MaxResponseBytes: cfg.MaxResponseBytes, MaxBatchResultBytes: cfg.MaxBatchResultBytes, Reserved: reserved}
}

// workerOptions are a worker's options with results, webhooks and cleanup
// wired; webhooks are signed with secrets and read statuses through jobs.
func workerOptions(cfg Config, blobs *blob.Store, secrets webhookSecrets, out activities.Outbound, jobs worker.Jobs) worker.Options {
	return worker.Options{
		MaxConcurrentJobs:   cfg.WorkerConcurrency,
		Blobs:               blobs,
		ResultBlobThreshold: cfg.ResultBlobThreshold,
		Webhooks: &worker.WebhookOptions{
			Secrets:  secrets,
			Outbound: out,
			Jobs:     jobs,
			Render:   func(j *job.Job) any { return httpapi.NewStatus(j, cfg.PublicURL) },
		},
	}
}
