package app

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/httpapi"
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
	return nil
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
	return st, nil
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

// cursorKey is the key listing cursors are signed with, derived from the
// secrets every API instance of a deployment shares (the webhook signing
// secrets, generated in local mode, and the API key hashes), so that any
// instance accepts another's cursors and no client can forge one (a
// deployment whose only secret is one tenant's own key lets that tenant
// forge cursors for its own listings, which reach nothing more).
func (st *storage) cursorKey(cfg Config) []byte {
	h := sha256.New()
	h.Write([]byte("jobgate listing cursor key\x00" + cfg.TemporalNamespace + "\x00"))
	for _, tenant := range slices.Sorted(maps.Keys(st.secrets)) {
		h.Write([]byte(tenant + "\x00" + st.secrets[tenant] + "\x00"))
	}
	hashes := make([]string, 0, len(cfg.apiKeys))
	for _, k := range cfg.apiKeys {
		hashes = append(hashes, string(k.Hash[:]))
	}
	slices.Sort(hashes)
	for _, hash := range hashes {
		h.Write([]byte(hash))
	}
	return h.Sum(nil)
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
