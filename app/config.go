package app

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/httpapi"
)

// Config is jobgate's whole configuration, read once from JOBGATE_*
// environment variables. docs/configuration.md lists every variable.
type Config struct {
	// Role is all (API and worker in one process), api or worker.
	Role string `envconfig:"JOBGATE_ROLE" default:"all"`
	// HTTPAddr is where the API listens (roles all and api). Without API
	// keys and unless set, the API listens on 127.0.0.1 only.
	HTTPAddr string `envconfig:"JOBGATE_HTTP_ADDR" default:":8080"`
	// TemporalAddress is the Temporal frontend host:port. Empty with role
	// all starts the embedded server.
	TemporalAddress string `envconfig:"JOBGATE_TEMPORAL_ADDRESS"`
	// TemporalNamespace is the namespace jobs live in.
	TemporalNamespace string `envconfig:"JOBGATE_TEMPORAL_NAMESPACE" default:"default"`
	// TaskQueue is the Temporal task queue API and workers share.
	TaskQueue string `envconfig:"JOBGATE_TASK_QUEUE" default:"jobgate"`
	// KindsFile is a JSON file declaring external kinds, served by Temporal
	// workers in any language (docs/kinds.md, "External kinds"); empty
	// declares none. Every role loads it; a bad file stops start-up.
	KindsFile string `envconfig:"JOBGATE_KINDS_FILE"`
	// TemporalCompression is the gRPC compression of requests to Temporal:
	// gzip, none, or auto (none to a loopback address such as the embedded
	// server, where there is no bandwidth to save and compressing every
	// small request costs CPU; gzip, the SDK's default, to anything else).
	TemporalCompression string `envconfig:"JOBGATE_TEMPORAL_COMPRESSION" default:"auto"`
	// TemporalCallTimeout bounds every call the API makes to Temporal; a
	// slower answer is a 503.
	TemporalCallTimeout time.Duration `envconfig:"JOBGATE_TEMPORAL_CALL_TIMEOUT" default:"5s"`
	// TemporalTLSCA is a PEM file of the CA certificates that sign the
	// Temporal frontend's certificate (empty: the system's CAs). Any of the
	// TLS variables, or an API key, makes the connection TLS.
	TemporalTLSCA string `envconfig:"JOBGATE_TEMPORAL_TLS_CA"`
	// TemporalTLSCert and TemporalTLSKey are PEM files of the client
	// certificate and key presented to a Temporal that wants mutual TLS.
	TemporalTLSCert string `envconfig:"JOBGATE_TEMPORAL_TLS_CERT"`
	TemporalTLSKey  string `envconfig:"JOBGATE_TEMPORAL_TLS_KEY"`
	// TemporalTLSServerName is the name checked in the frontend's
	// certificate (empty: the host of TemporalAddress).
	TemporalTLSServerName string `envconfig:"JOBGATE_TEMPORAL_TLS_SERVER_NAME"`
	// TemporalAPIKey is sent as a bearer token on every call to Temporal
	// (Temporal Cloud's API keys, or a cluster's own authorizer); it
	// implies TLS and is never logged.
	TemporalAPIKey string `envconfig:"JOBGATE_TEMPORAL_API_KEY"`
	// DataDir holds the embedded server's SQLite file.
	DataDir string `envconfig:"JOBGATE_DATA_DIR" default:"./jobgate-data"`
	// EmbeddedTemporalPort is the embedded server's gRPC port.
	EmbeddedTemporalPort int `envconfig:"JOBGATE_EMBEDDED_TEMPORAL_PORT" default:"7233"`
	// EmbeddedUIPort is the embedded Web UI's port; 0 disables the UI.
	EmbeddedUIPort int `envconfig:"JOBGATE_EMBEDDED_UI_PORT" default:"8233"`
	// EmbeddedHTTPPort is the embedded frontend's HTTP API port; 0 (the
	// default) runs no HTTP API. It answers anyone who reaches it, with
	// no authentication, for every tenant.
	EmbeddedHTTPPort int `envconfig:"JOBGATE_EMBEDDED_HTTP_PORT" default:"0"`
	// EmbeddedStore is where the embedded server keeps its state: file (a
	// SQLite file in DataDir that survives restarts and kill -9) or memory
	// (lost when the process exits; for benchmarks and throwaway runs), or
	// a postgres://user:password@host:port/database URL (state in that
	// PostgreSQL database, visibility in database_visibility; both created
	// if missing, their schemas set up or migrated at every start).
	EmbeddedStore string `envconfig:"JOBGATE_EMBEDDED_STORE" default:"file"`
	// EmbeddedLogLevel is the embedded server's own log level (debug, info,
	// warn, error, none).
	EmbeddedLogLevel string `envconfig:"JOBGATE_EMBEDDED_LOG_LEVEL" default:"error"`
	// EmbeddedHistoryCache is how many workflows' mutable state the
	// embedded server keeps in memory (history.hostLevelCacheMaxSize):
	// sized for one node, where Temporal's default (128,000) is for a
	// history host of a cluster. Each entry is a workflow's whole state
	// (tens of KiB for a job with its memo and search attributes); a
	// workflow that is not cached is read from the store when it next
	// moves. 0 takes the default, 1024.
	EmbeddedHistoryCache int `envconfig:"JOBGATE_EMBEDDED_HISTORY_CACHE" default:"1024"`
	// EmbeddedSQLiteCache is the embedded server's SQLite page cache in
	// MiB (file store only); its resident cost once full is about twice
	// this. 0 takes the default, 16.
	EmbeddedSQLiteCache int `envconfig:"JOBGATE_EMBEDDED_SQLITE_CACHE_MIB" default:"16"`
	// EmbeddedDynamicConfig is a Temporal dynamic config YAML file (the
	// format of deploy/temporal/dynamicconfig.yaml) whose settings
	// override the embedded server's: its caches, its task queues, eager
	// dispatch. A key the server does not know fails the start.
	EmbeddedDynamicConfig string `envconfig:"JOBGATE_EMBEDDED_DYNAMIC_CONFIG"`
	// PublicURL is the base of absolute URLs in Location headers and links;
	// empty gives absolute paths.
	PublicURL string `envconfig:"JOBGATE_PUBLIC_URL"`
	// TrustedProxies are comma-separated CIDRs whose X-Forwarded-Proto and
	// X-Forwarded-Host build absolute URLs when PublicURL is empty.
	TrustedProxies []string `envconfig:"JOBGATE_TRUSTED_PROXIES"`
	// MaxWait caps Prefer: wait=N on submissions and long-polls.
	MaxWait time.Duration `envconfig:"JOBGATE_MAX_WAIT" default:"60s"`
	// MaxDelay caps how far ahead runAt or delaySeconds may start a job
	// (422 beyond).
	MaxDelay time.Duration `envconfig:"JOBGATE_MAX_DELAY" default:"720h"`
	// MaxSchedules caps each tenant's schedules (429 beyond; 0: no cap).
	MaxSchedules int `envconfig:"JOBGATE_MAX_SCHEDULES" default:"100"`
	// APIKeys are comma-separated tenant:sha256-hex-of-key entries; empty
	// is single-tenant local mode (tenant "default").
	APIKeys []string `envconfig:"JOBGATE_API_KEYS"`
	// RateLimit is each tenant's average requests per second to /v1/ (0:
	// unlimited).
	RateLimit float64 `envconfig:"JOBGATE_RATE_LIMIT" default:"100"`
	// RateBurst is each tenant's burst of requests (0: twice RateLimit).
	RateBurst int `envconfig:"JOBGATE_RATE_BURST" default:"0"`
	// MaxActiveJobs caps each tenant's queued and running jobs (0: no cap).
	MaxActiveJobs int `envconfig:"JOBGATE_MAX_ACTIVE_JOBS" default:"10000"`
	// MaxStreams caps each tenant's requests held open at once: event
	// streams and long-polls (429 beyond) and waiting submissions (202 at
	// once beyond); 0: no cap.
	MaxStreams int `envconfig:"JOBGATE_MAX_STREAMS" default:"100"`
	// TenantBlobQuota is each tenant's blob storage quota in bytes:
	// results, exports and batch checkpoints together (429 on submission
	// while it is used up; a write past it fails the job; 0: no quota).
	TenantBlobQuota int64 `envconfig:"JOBGATE_TENANT_BLOB_QUOTA" default:"10737418240"`
	// TenantLimits are per-tenant overrides, comma-separated
	// tenant:rate=R:burst=B:active=N:weight=W:streams=S:blobs=BYTES entries.
	TenantLimits []string `envconfig:"JOBGATE_TENANT_LIMITS"`
	// WatchRate bounds the Temporal look-ups per second of all watched
	// jobs together (jobs with open streams, long-polls or waiting
	// submissions), however many there are; 0: no bound.
	WatchRate float64 `envconfig:"JOBGATE_WATCH_RATE" default:"100"`
	// WatchMaxInterval is how far a watched job's look-up interval backs
	// off while nothing changes (from 250ms, doubling).
	WatchMaxInterval time.Duration `envconfig:"JOBGATE_WATCH_MAX_INTERVAL" default:"4s"`
	// MaxBacklog is the task queue backlog over which submissions get 503
	// (0: no check).
	MaxBacklog int64 `envconfig:"JOBGATE_MAX_BACKLOG" default:"10000"`
	// ResultTTL is how long finished jobs stay readable before 410 Gone.
	ResultTTL time.Duration `envconfig:"JOBGATE_RESULT_TTL" default:"24h"`
	// MaxBodyBytes caps a request body (413 beyond).
	MaxBodyBytes int64 `envconfig:"JOBGATE_MAX_BODY_BYTES" default:"1048576"`
	// RequireIdempotencyKey makes the Idempotency-Key header mandatory.
	RequireIdempotencyKey bool `envconfig:"JOBGATE_REQUIRE_IDEMPOTENCY_KEY" default:"false"`
	// AllowPrivateTargets lets outbound requests reach private, loopback
	// and link-local addresses; never jobgate's own listeners nor the
	// embedded Temporal server's.
	AllowPrivateTargets bool `envconfig:"JOBGATE_ALLOW_PRIVATE_TARGETS" default:"false"`
	// MaxResponseBytes caps the response an http.request job, and each
	// request of a batch.http job, reads: headers (names and values) and
	// body together.
	MaxResponseBytes int64 `envconfig:"JOBGATE_MAX_RESPONSE_BYTES" default:"1048576"`
	// MaxBatchResultBytes caps a batch.http job's result, all its items'
	// results together (and so its checkpoints): a response that would
	// pass it keeps only its status and a batch-result-too-large error.
	MaxBatchResultBytes int64 `envconfig:"JOBGATE_MAX_BATCH_RESULT_BYTES" default:"33554432"`
	// BlobURL is the blob storage of large results, exports and batch
	// checkpoints (file:///dir, s3://bucket?region=…, gs://bucket). Empty
	// is file:// under DataDir/blobs, which roles api and worker accept
	// only when JOBGATE_DATA_DIR is set (a directory they share).
	BlobURL string `envconfig:"JOBGATE_BLOB_URL"`
	// ResultBlobThreshold is the size in bytes over which a JSON result
	// goes to blob storage instead of the workflow's history (at most
	// 1 MiB; 0 sends every result there). Unset, it is
	// activities.DefaultResultBlobThreshold (loadConfig sets it: a tag
	// default would write the number a second time).
	ResultBlobThreshold int64 `envconfig:"JOBGATE_RESULT_BLOB_THRESHOLD"`
	// WebhookSecrets are comma-separated tenant:whsec_… signing secrets.
	// Empty in local mode (no API keys): one is generated for tenant
	// default and kept in DataDir/webhook-secret (mode 0600).
	WebhookSecrets []string `envconfig:"JOBGATE_WEBHOOK_SECRETS"`
	// DeploymentSecret is the deployment's own secret (at least 32
	// characters), the same on every API instance and never given to
	// anyone: job ids of Idempotency-Keys are keyed by it and listing
	// cursors signed with it. Empty with the embedded Temporal server, or
	// with an explicit DataDir that the API instances share: generated
	// once and kept in DataDir/deployment-secret (mode 0600). Roles api
	// and all with an external Temporal refuse to start without either.
	DeploymentSecret string `envconfig:"JOBGATE_DEPLOYMENT_SECRET"`
	// WorkerConcurrency bounds the jobs one worker runs at once.
	WorkerConcurrency int `envconfig:"JOBGATE_WORKER_CONCURRENCY" default:"200"`
	// ReadHeaderTimeout is how long a client may take to send its request
	// headers (the body gets 20 s more) before the connection is closed.
	ReadHeaderTimeout time.Duration `envconfig:"JOBGATE_READ_HEADER_TIMEOUT" default:"10s"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration `envconfig:"JOBGATE_SHUTDOWN_TIMEOUT" default:"30s"`
	// OTLPEndpoint, when set, sends traces over OTLP/gRPC to this
	// host:port.
	OTLPEndpoint string `envconfig:"JOBGATE_OTLP_ENDPOINT"`
	// OTLPInsecure sends traces without TLS.
	OTLPInsecure bool `envconfig:"JOBGATE_OTLP_INSECURE" default:"false"`
	// LogLevel is jobgate's log level (debug, info, warn, error).
	LogLevel string `envconfig:"JOBGATE_LOG_LEVEL" default:"info"`
	// PprofAddr, when set, serves Go's profiler (net/http/pprof) on its
	// own listener at this address, e.g. 127.0.0.1:6060. It reveals the
	// process's internals: bind it to loopback or a private network.
	PprofAddr string `envconfig:"JOBGATE_PPROF_ADDR"`
	// MetricsAddr is where Prometheus metrics are served (GET /metrics),
	// on a listener of their own, never the API's. Unset: 127.0.0.1 at the
	// port of HTTPAddr plus 1000 (127.0.0.1:9080 for :8080), so processes
	// with their own HTTP ports on one host do not collide; off (or empty)
	// serves none. The metrics name kinds and counts: keep them off the
	// public network.
	MetricsAddr string `envconfig:"JOBGATE_METRICS_ADDR"`

	trustedProxies []netip.Prefix
	apiKeys        []httpapi.APIKey
	blobURL        string
	webhookSecrets map[string]string
	limits         httpapi.Limits
	tenantLimits   map[string]httpapi.Limits
	metricsAddr    string
}

// loadConfig reads and checks the configuration from the environment.
func loadConfig() (Config, error) {
	var cfg Config
	// No prefix: each tag is the variable's whole name, so envconfig's
	// fallback to the name without its prefix (a stray ROLE or LOG_LEVEL
	// in a container's environment) never applies.
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return checkConfig(cfg, os.LookupEnv)
}

// loadConfigFrom reads and checks the configuration from the variables
// lookup finds: loadConfig's reading through readEnv, envconfig's rules
// over a lookup (envconfig reads only the process's environment, which
// parallel tests cannot each set).
func loadConfigFrom(lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	if err := readEnv(lookup, &cfg); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return checkConfig(cfg, lookup)
}

// checkConfig completes and checks cfg, read from the variables lookup
// finds.
func checkConfig(cfg Config, lookup func(string) (string, bool)) (Config, error) {
	if _, set := lookup("JOBGATE_RESULT_BLOB_THRESHOLD"); !set {
		cfg.ResultBlobThreshold = activities.DefaultResultBlobThreshold
	}
	switch cfg.Role {
	case "all":
	case "api", "worker":
		if cfg.TemporalAddress == "" {
			return cfg, fmt.Errorf("configuration: JOBGATE_ROLE=%s needs JOBGATE_TEMPORAL_ADDRESS (only role all embeds a Temporal server)", cfg.Role)
		}
	default:
		return cfg, fmt.Errorf("configuration: JOBGATE_ROLE must be all, api or worker, not %q", cfg.Role)
	}
	switch cfg.TemporalCompression {
	case "auto", "gzip", "none":
	default:
		return cfg, fmt.Errorf("configuration: JOBGATE_TEMPORAL_COMPRESSION must be auto, gzip or none, not %q", cfg.TemporalCompression)
	}
	if cfg.EmbeddedStore != "file" && cfg.EmbeddedStore != "memory" && !cfg.embeddedPostgres() {
		return cfg, fmt.Errorf("configuration: JOBGATE_EMBEDDED_STORE must be file, memory or a postgres:// URL, not %q", cfg.EmbeddedStore)
	}
	if cfg.EmbeddedSQLiteCache < 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_EMBEDDED_SQLITE_CACHE_MIB must be 0 (for the default, 16) or more, not %d", cfg.EmbeddedSQLiteCache)
	}
	if cfg.ResultTTL <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_RESULT_TTL must be positive, not %s", cfg.ResultTTL)
	}
	for _, p := range cfg.TrustedProxies {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			return cfg, fmt.Errorf("configuration: JOBGATE_TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8: %w", p, err)
		}
		cfg.trustedProxies = append(cfg.trustedProxies, prefix)
	}
	var err error
	if cfg.apiKeys, err = httpapi.ParseAPIKeys(cfg.APIKeys); err != nil {
		return cfg, fmt.Errorf("configuration: JOBGATE_API_KEYS: %w", err)
	}
	if err := cfg.keylessLoopback(lookup); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	if cfg.RateLimit < 0 || cfg.RateBurst < 0 || cfg.MaxActiveJobs < 0 || cfg.MaxStreams < 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_RATE_LIMIT, JOBGATE_RATE_BURST, JOBGATE_MAX_ACTIVE_JOBS and JOBGATE_MAX_STREAMS must not be negative")
	}
	if cfg.WatchRate < 0 || cfg.WatchMaxInterval <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_WATCH_RATE must not be negative (not %g) and JOBGATE_WATCH_MAX_INTERVAL must be positive (not %s)", cfg.WatchRate, cfg.WatchMaxInterval)
	}
	if cfg.TenantBlobQuota < 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_TENANT_BLOB_QUOTA must not be negative, not %d", cfg.TenantBlobQuota)
	}
	cfg.limits = httpapi.Limits{Rate: cfg.RateLimit, Burst: cfg.RateBurst, MaxActive: cfg.MaxActiveJobs, MaxStreams: cfg.MaxStreams, BlobBytes: cfg.TenantBlobQuota}
	if cfg.tenantLimits, err = httpapi.ParseTenantLimits(cfg.TenantLimits, cfg.limits); err != nil {
		return cfg, fmt.Errorf("configuration: JOBGATE_TENANT_LIMITS: %w", err)
	}
	if cfg.MaxResponseBytes <= 0 || cfg.MaxBatchResultBytes <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_MAX_RESPONSE_BYTES and JOBGATE_MAX_BATCH_RESULT_BYTES must be positive, not %d and %d", cfg.MaxResponseBytes, cfg.MaxBatchResultBytes)
	}
	if cfg.ReadHeaderTimeout <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_READ_HEADER_TIMEOUT must be positive, not %s", cfg.ReadHeaderTimeout)
	}
	if cfg.MaxDelay <= 0 || cfg.MaxSchedules < 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_MAX_DELAY must be positive (not %s) and JOBGATE_MAX_SCHEDULES not negative (not %d)", cfg.MaxDelay, cfg.MaxSchedules)
	}
	if cfg.MaxWait <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_MAX_WAIT must be positive, not %s", cfg.MaxWait)
	}
	if cfg.TemporalCallTimeout <= 0 {
		return cfg, fmt.Errorf("configuration: JOBGATE_TEMPORAL_CALL_TIMEOUT must be positive, not %s", cfg.TemporalCallTimeout)
	}
	value, set := lookup("JOBGATE_METRICS_ADDR")
	if cfg.metricsAddr, err = metricsAddr(value, set, cfg.HTTPAddr); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.checkTemporalTLS(); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.checkStorage(lookup); err != nil {
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, nil
}

// blobQuota is tenant's blob storage quota in bytes (0: none).
func (c Config) blobQuota(tenant string) int64 {
	if l, ok := c.tenantLimits[tenant]; ok {
		return l.BlobBytes
	}
	return c.limits.BlobBytes
}

// keylessLoopback binds the API to loopback in local mode (no API keys),
// where anyone who reaches it acts as the only tenant, unless
// JOBGATE_HTTP_ADDR was set (start-up then warns).
func (c *Config) keylessLoopback(lookup func(string) (string, bool)) error {
	if _, set := lookup("JOBGATE_HTTP_ADDR"); set || len(c.apiKeys) > 0 || !c.runsAPI() {
		return nil
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("JOBGATE_HTTP_ADDR %q: %w", c.HTTPAddr, err)
	}
	if host == "" {
		c.HTTPAddr = net.JoinHostPort("127.0.0.1", port)
	}
	return nil
}

func (c Config) runsAPI() bool    { return c.Role == "all" || c.Role == "api" }
func (c Config) runsWorker() bool { return c.Role == "all" || c.Role == "worker" }
func (c Config) embedded() bool   { return c.Role == "all" && c.TemporalAddress == "" }

// embeddedPostgres reports whether the embedded server runs on PostgreSQL.
func (c Config) embeddedPostgres() bool {
	return strings.HasPrefix(c.EmbeddedStore, "postgres://") || strings.HasPrefix(c.EmbeddedStore, "postgresql://")
}
