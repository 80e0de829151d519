package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/engine"
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

// storage is what jobs keep outside Temporal and what signs their
// webhooks: the blob store, the webhook secrets, and the job lister of the
// export kind, which works once Temporal is dialed.
type storage struct {
	blobs   *blob.Store
	secrets map[string]string
	jobs    *lister
	// reserved are the listeners outbound requests never reach, filled
	// as they start.
	reserved *activities.Reserved
	// deploymentSecret keys job ids and signs cursors (API roles only).
	deploymentSecret []byte
}

// openStorage opens the blob store and, in local mode without configured
// secrets, loads or creates tenant default's webhook secret.
func openStorage(ctx context.Context, cfg Config) (*storage, error) {
	blobs, err := blob.Open(ctx, cfg.blobURL)
	if err != nil {
		return nil, fmt.Errorf("JOBGATE_BLOB_URL: %w", err)
	}
	blobs.LimitTenants(cfg.blobQuota)
	st := &storage{blobs: blobs, secrets: cfg.webhookSecrets, jobs: &lister{}, reserved: &activities.Reserved{}}
	fmt.Printf("jobgate: blob storage at %s (results over %d bytes, exports, batch checkpoints)\n", blobs, cfg.ResultBlobThreshold)
	if len(st.secrets) == 0 && len(cfg.apiKeys) == 0 {
		path := filepath.Join(cfg.DataDir, "webhook-secret")
		secret, err := webhook.LoadOrCreateSecret(path)
		if err != nil {
			_ = blobs.Close()
			return nil, fmt.Errorf("webhook signing secret: %w (or set JOBGATE_WEBHOOK_SECRETS)", err)
		}
		st.secrets = map[string]string{"default": secret}
		fmt.Printf("jobgate: webhooks of tenant \"default\" are signed with the secret in %s\n", path)
	}
	if cfg.runsAPI() {
		if st.deploymentSecret, err = loadDeploymentSecret(cfg); err != nil {
			_ = blobs.Close()
			return nil, err
		}
	}
	return st, nil
}

// loadDeploymentSecret is JOBGATE_DEPLOYMENT_SECRET, or the secret kept in
// the data directory, generated the first time.
func loadDeploymentSecret(cfg Config) ([]byte, error) {
	if cfg.DeploymentSecret != "" {
		return []byte(cfg.DeploymentSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "deployment-secret")
	secret, err := loadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("deployment secret: %w (or set JOBGATE_DEPLOYMENT_SECRET)", err)
	}
	fmt.Printf("jobgate: job ids of Idempotency-Keys are keyed by the secret in %s (keep it with the data; set JOBGATE_DEPLOYMENT_SECRET to share one)\n", path)
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

func (st *storage) close(logger *slog.Logger) {
	if err := st.blobs.Close(); err != nil {
		logger.Warn("closing blob storage", "error", err)
	}
}

// deps are the built-in kinds' dependencies.
func (st *storage) deps(cfg Config) activities.Deps {
	return activities.Deps{
		Outbound: st.outbound(cfg),
		Blobs:    st.blobs,
		Jobs:     st.jobs,
	}
}

// workerOptions are a worker's options with results, webhooks and cleanup
// wired; webhooks read statuses through jobs.
func (st *storage) workerOptions(cfg Config, jobs worker.Jobs) worker.Options {
	return worker.Options{
		MaxConcurrentJobs:   cfg.WorkerConcurrency,
		Blobs:               st.blobs,
		ResultBlobThreshold: cfg.ResultBlobThreshold,
		Webhooks: &worker.WebhookOptions{
			Secrets:  st.secrets,
			Outbound: st.outbound(cfg),
			Jobs:     jobs,
			Render:   func(j *job.Job) any { return httpapi.NewStatus(j, cfg.PublicURL) },
		},
	}
}

// signs reports whether webhooks can be signed for tenant.
func (st *storage) signs(tenant string) bool {
	_, ok := st.secrets[tenant]
	return ok
}

func (st *storage) outbound(cfg Config) activities.Outbound {
	return activities.Outbound{AllowPrivate: cfg.AllowPrivateTargets, MaxResponseBytes: cfg.MaxResponseBytes, MaxBatchResultBytes: cfg.MaxBatchResultBytes, Reserved: st.reserved}
}

// lister lists jobs through the process's engine.Service, once Run made
// it: the kinds are built before Temporal is dialed, and the service runs
// them.
type lister struct{ svc *engine.Service }

func (l *lister) List(ctx context.Context, tenant string, f job.ListFilter) (*job.Page, error) {
	if l.svc == nil {
		return nil, fmt.Errorf("list jobs: %w (not connected to Temporal yet)", job.ErrUnavailable)
	}
	return l.svc.List(ctx, tenant, f)
}
