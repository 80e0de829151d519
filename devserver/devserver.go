// Package devserver runs a real Temporal server, and optionally its Web UI,
// inside the jobgate process: the one-command local default (on a SQLite
// file that survives restarts) and the test suite's server (in memory). It
// links the whole Temporal server, so only the binary and the end-to-end
// tests import it.
package devserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	persistencesql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/resolver"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Options configures an embedded server. Zero values take the defaults
// shown.
type Options struct {
	// DatabaseFile is the SQLite file that holds all state; its directory
	// must exist. Empty keeps everything in memory (lost on exit).
	DatabaseFile string
	// Postgres, when set, is a postgres://user:password@host:port/database
	// URL: the server keeps its state in that PostgreSQL database and its
	// visibility in a second one (database_visibility, or the URL's
	// visibility_database parameter) instead of SQLite, creating both if
	// missing and setting up or migrating their schemas at every start.
	// DatabaseFile is then ignored.
	Postgres string
	// IP is the address every service binds to (default 127.0.0.1).
	IP string
	// Port is the frontend's gRPC port (0 picks a free one).
	Port int
	// UIPort is the Web UI's port; 0 runs no UI.
	UIPort int
	// HTTPPort is the frontend's HTTP API port; 0 runs no HTTP API.
	// Anyone who reaches it has the same power as through gRPC.
	HTTPPort int
	// Namespace is created if missing (default "default").
	Namespace string
	// Retention is how long closed workflows are kept in a namespace this
	// server creates (default 24h).
	Retention time.Duration
	// SearchAttributes are added to the namespace when it is created.
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogLevel of the server's own log, written as JSON to standard error
	// (default "warn"; "none" silences it).
	LogLevel string
	// DynamicConfigFile is a Temporal dynamic config YAML file (the format
	// of deploy/temporal/dynamicconfig.yaml) whose settings override this
	// package's. A key the server does not know, or a value it does not
	// accept, fails Start.
	DynamicConfigFile string
	// TLS, when set, makes the frontend serve TLS (mutual with
	// TLS.ClientCAFile).
	TLS *TLSOptions
	// FrontendInterceptors run on every gRPC call the frontend serves,
	// after Temporal's own (tests use them to see what clients send).
	FrontendInterceptors []grpc.UnaryServerInterceptor
	// HistoryCache is how many workflows' mutable state the history
	// service keeps in memory (history.hostLevelCacheMaxSize; default
	// 1024, where Temporal's is 128,000 for a cluster's history host):
	// the largest of the server's caches, and what its memory grows with
	// as workflows accumulate. A DynamicConfigFile setting overrides it.
	HistoryCache int
	// SQLiteCacheMiB is the SQLite file's page cache in MiB (default 16).
	// Its pages are allocated outside the Go heap in power-of-two slots,
	// so the resident memory it costs once full is about twice this.
	SQLiteCacheMiB int
	// UnfairTaskQueues are task queues on which fair dispatch between
	// fairness keys stays off (it is on everywhere else): for tests and
	// benchmarks that show what tenants see without it.
	UnfairTaskQueues []string
}

// Server is a running embedded Temporal server.
type Server struct {
	server   temporal.Server
	ui       *uiserver.Server
	frontend string
	uiAddr   string
	opts     Options
	// listeners are the host:port of every service's gRPC and HTTP API.
	listeners []string
	// clientTLS is how the server's own clients dial the frontend (nil:
	// plain text).
	clientTLS *tls.Config
}

// Start starts the server and, if asked, the Web UI, and returns once the
// frontend accepts connections. Errors name what failed: the database file,
// a port in use, the server's own start.
func Start(opts Options) (*Server, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	if opts.Port == 0 {
		p, err := freePort(opts.IP)
		if err != nil {
			return nil, err
		}
		opts.Port = p
	} else if err := portFree(opts.IP, opts.Port); err != nil {
		return nil, fmt.Errorf("embedded Temporal frontend: %w", err)
	}
	if opts.HTTPPort != 0 {
		if err := portFree(opts.IP, opts.HTTPPort); err != nil {
			return nil, fmt.Errorf("embedded Temporal HTTP API: %w", err)
		}
	}

	sqlConf, err := sqlConfig(opts)
	if err != nil {
		return nil, err
	}
	conf, err := serverConfig(opts, sqlConf, opts.HTTPPort)
	if err != nil {
		return nil, err
	}
	var clientTLS *tls.Config
	if opts.TLS != nil {
		applyTLS(conf, opts.TLS)
		if clientTLS, err = opts.TLS.clientTLS(); err != nil {
			return nil, err
		}
	}

	fileConfig, err := loadDynamicConfig(opts.DynamicConfigFile)
	if err != nil {
		return nil, err
	}
	logger := log.Logger(log.NewNoopLogger())
	if opts.LogLevel != "none" {
		logger = log.NewZapLogger(log.BuildZapLogger(log.Config{Level: opts.LogLevel, Format: "json"}))
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal claim mapper: %w", err)
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(opts.IP, strconv.Itoa(svc.RPC.GRPCPort)))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithChainedFrontendGrpcInterceptors(opts.FrontendInterceptors...),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(overlayDynamicConfig(fileConfig, dynamicconfig.StaticClient{
			// ForceSearchAttributesCacheRefreshOnRead (the Temporal CLI's dev
			// server sets it) stays off: it re-reads the cluster metadata
			// under a lock on every search attribute look-up, several per
			// start of a workflow that carries search attributes, which
			// measured ~12% of start throughput. jobgate's search attributes
			// are created with the namespace, before the server starts; one
			// an operator adds later is usable within a minute.
			//
			// One write partition per task queue: with the default four, a
			// task written to a partition no poller was on at that moment
			// could wait out a poll (~70 s) while the worker's pollers sat
			// on another; on one node, partitions buy nothing. Reads keep
			// all four, so tasks an earlier version wrote to the others
			// still drain.
			//
			// History's task queues (transfer, visibility, timer, …) track
			// the tasks they have loaded in slices. Three mitigations meant for
			// clusters with many namespaces narrow a slice's predicate to
			// the namespaces it holds: moving a namespace with 500 pending
			// tasks to a reader of its own, shrinking the predicate of a
			// slice with few namespaces left, and, past 9,000 pending
			// tasks, splitting and unloading slices. With one namespace
			// they isolate nothing, and a narrowed slice can no longer be
			// merged with the next new range cheaply: every new task then
			// walked every pending one (executableTracker.split), up to a
			// fifth of the server's CPU under sustained starts, growing with
			// the backlog. Off here, with room for 50,000 pending tasks per
			// queue (they stay in the database; this is what may be held in
			// memory at once, where 9,000 to 10,000 were before: the
			// bench's peak memory, with the visibility queue behind by
			// thousands, stayed at ~680 MiB).
			dynamicconfig.MatchingNumTaskqueueWritePartitions.Key():          1,
			dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 cmp.Or(opts.HistoryCache, 1024),
			dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
			dynamicconfig.EnableEagerWorkflowStart.Key():                     true,
			// Eager activity dispatch (Temporal 1.32's default, pinned
			// here): the activity a workflow task schedules on its own task
			// queue comes back in that task's completion to the worker that
			// has a free slot, skipping history's transfer queue and
			// matching. On this server that hop costs up to 50 ms (the
			// transfer queue polls at most 20 times a second per shard, and
			// there is one shard): off, an http.request job's waiting POST
			// and raw's ExecuteWorkflow+Get took p50 100 ms at concurrency 1,
			// on 50 ms (docs/benchmarks.md).
			dynamicconfig.EnableActivityEagerExecution.Key():       true,
			dynamicconfig.QueueMoveGroupTaskCountBase.Key():        0,
			dynamicconfig.QueueShrinkPredicateMaxPendingKeys.Key(): 0,
			dynamicconfig.QueuePendingTaskCriticalCount.Key():      50000,
			dynamicconfig.QueuePendingTaskMaxCount.Key():           55000,
			// Fair dispatch between fairness keys (jobgate's tenants), so one
			// tenant's backlog does not hold every worker slot while another
			// tenant's jobs wait; off by default in Temporal.
			dynamicconfig.MatchingEnableFairness.Key(): fairness(opts.UnfairTaskQueues),
		})),
	)
	if err != nil {
		return nil, fmt.Errorf("create embedded Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start embedded Temporal server: %w", err)
	}
	s := &Server{server: srv, frontend: net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port)), opts: opts, clientTLS: clientTLS}
	for _, svc := range conf.Services {
		s.listeners = append(s.listeners, net.JoinHostPort(opts.IP, strconv.Itoa(svc.RPC.GRPCPort)))
		if svc.RPC.HTTPPort != 0 {
			s.listeners = append(s.listeners, net.JoinHostPort(opts.IP, strconv.Itoa(svc.RPC.HTTPPort)))
		}
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	if opts.UIPort != 0 {
		if err := s.startUI(); err != nil {
			_ = srv.Stop()
			return nil, err
		}
	}
	return s, nil
}

// fairness is the value of matching.enableFairness: on, except on the
// unfair task queues.
func fairness(unfair []string) []dynamicconfig.ConstrainedValue {
	values := make([]dynamicconfig.ConstrainedValue, 0, len(unfair)+1)
	for _, q := range unfair {
		values = append(values, dynamicconfig.ConstrainedValue{Constraints: dynamicconfig.Constraints{TaskQueueName: q}, Value: false})
	}
	return append(values, dynamicconfig.ConstrainedValue{Value: true})
}

// FrontendAddress is the host:port clients dial.
func (s *Server) FrontendAddress() string { return s.frontend }

// UIAddress is the Web UI's URL, or empty when it is not running.
func (s *Server) UIAddress() string { return s.uiAddr }

// Listeners lists the host:port of everything the server listens on: each
// service's gRPC port, the frontend's HTTP API if it runs, and the Web UI
// if it runs. None of them checks who calls.
func (s *Server) Listeners() []string {
	out := slices.Clone(s.listeners)
	if s.ui != nil {
		out = append(out, net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort)))
	}
	return out
}

// Namespace is the namespace the server created.
func (s *Server) Namespace() string { return s.opts.Namespace }

// Stop stops the UI and then the server.
func (s *Server) Stop() error {
	if s.ui != nil {
		s.ui.Stop()
	}
	return s.server.Stop()
}

// waitReady dials the frontend until it answers a health check.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.DialContext(ctx, client.Options{HostPort: s.frontend, Namespace: s.opts.Namespace, Logger: quietLogger{},
			ConnectionOptions: client.ConnectionOptions{TLS: s.clientTLS}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			c.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("embedded Temporal server at %s not ready after %s: %w", s.frontend, limit, lastErr)
}

func (s *Server) startUI() error {
	if err := portFree(s.opts.IP, s.opts.UIPort); err != nil {
		return fmt.Errorf("embedded Temporal Web UI: %w (set JOBGATE_EMBEDDED_UI_PORT to another port, or 0 to disable the UI)", err)
	}
	s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                s.opts.IP,
		Port:                s.opts.UIPort,
		TemporalGRPCAddress: s.frontend,
		EnableUI:            true,
		DefaultNamespace:    s.opts.Namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	go func() { _ = s.ui.Start() }()
	s.uiAddr = "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
	return nil
}

func sqlConfig(opts Options) (*config.SQL, error) {
	if opts.Postgres != "" {
		return postgresConfig(opts)
	}
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DatabaseFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = strconv.Itoa(rand.IntN(1_000_000_000))
	} else {
		// WAL with synchronous=NORMAL: a commit survives the process being
		// killed (it is in the WAL, in the OS), at a fraction of the cost
		// of a full sync per transaction.
		//
		// The rest is speed, measured with cmd/jobgate-bench (README,
		// "Benchmarks"), durability unchanged. The server reaches the
		// file through the plugin's single connection, so exclusive
		// locking costs nothing and spares every transaction the
		// shared-memory WAL index and its file locks (no other process
		// may open the file while the server runs). A 16 MiB page cache
		// (SQLiteCacheMiB; SQLite's default is 2 MiB) keeps the
		// visibility table's indexes in memory, and checkpointing every 4000 WAL pages
		// rather than 1000 syncs a quarter as often. Over five or six
		// interleaved runs each on two shared cores, they took end-to-end
		// jobs from ~41/s to ~54/s and plain starts from ~218/s to ~234/s
		// (in memory: ~58/s and ~273/s). Four connections instead of one
		// (readers beside the writer) measured slower. The cache was
		// 64 MiB then; SQLite's allocator (modernc.org/memory) puts each
		// 4 KiB page and its header in an 8 KiB slot, so it cost ~128 MiB
		// of the all-in-one's resident memory at 70,000 stored jobs, nearly a
		// third of it; 32 MiB halved that, and 16 MiB keeps the all-in-one of
		// a full benchmark run at 70,000 jobs under 450 MiB, where 32 MiB
		// peaked at 453 MiB (docs/benchmarks.md).
		conf.ConnectAttributes = map[string]string{
			"mode":               "rwc",
			"journal_mode":       "wal",
			"synchronous":        "normal",
			"busy_timeout":       "10000",
			"locking_mode":       "exclusive",
			"cache_size":         "-" + strconv.Itoa(cmp.Or(opts.SQLiteCacheMiB, 16)*1024),
			"wal_autocheckpoint": "4000",
		}
		conf.DatabaseName = opts.DatabaseFile
		if _, err := os.Stat(opts.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Dir(opts.DatabaseFile)); err != nil {
				return nil, fmt.Errorf("embedded Temporal database directory: %w", err)
			}
			if err := sqliteschema.SetupSchema(conf); err != nil {
				return nil, fmt.Errorf("create embedded Temporal schema in %s: %w", opts.DatabaseFile, err)
			}
		}
	}
	// (In memory, the plugin creates the schema on first connecting.)
	if err := trimVisibilityIndexes(conf); err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal namespace %q: %w", opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(opts.Retention)
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("create embedded Temporal namespace %q: %w", opts.Namespace, err)
	}
	return conf, nil
}

func serverConfig(opts Options, sqlConf *config.SQL, httpPort int) (*config.Config, error) {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = opts.IP
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-default"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}}
	if opts.Postgres != "" {
		usePostgres(&conf, sqlConf, opts.Postgres)
	}
	addr := net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port))
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             addr,
				HTTPAddress:            httpAddress(opts.IP, httpPort),
				ClusterID:              "jobgate-embedded",
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		svc := config.Service{}
		svc.RPC.BindOnIP = opts.IP
		if name == "frontend" {
			svc.RPC.GRPCPort = opts.Port
			svc.RPC.HTTPPort = httpPort
		} else {
			p, err := freePort(opts.IP)
			if err != nil {
				return nil, err
			}
			svc.RPC.GRPCPort = p
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = addr
	return &conf, nil
}

// statisticsVisibilityIndexes index execution statistics (history length
// and size, duration, state transitions) that every closed workflow has and
// nothing here filters or sorts on. Every visibility write updates every
// index on the table, so these are dropped; a query on such a column still
// works, by scanning.
var statisticsVisibilityIndexes = []string{
	"by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count",
}

// sparseVisibilityColumns are the columns of Temporal's SQLite visibility
// table that are NULL for most workflows: parent workflows (jobgate's jobs
// have none), the pre-allocated slots of custom search attributes (jobgate
// fills three keyword slots; an operator may register more), and system
// search attributes of features jobgate does not use (schedules, batch
// operations, pausing, worker deployments, CHASM slots). Their stock
// indexes hold an entry for every row, NULL or not, so each visibility
// write updated some forty indexes. Each is replaced by a partial index of
// the same columns over the rows where the column is set (named with a
// "_set" suffix): every query that tests the column for a value (=, IN,
// <, >, …) still uses it, and a row without the attribute costs it
// nothing. (TemporalNamespaceDivision keeps its full index: Temporal adds
// "TemporalNamespaceDivision IS NULL" to every listing and count that
// does not name it, which a partial index cannot serve.)
var sparseVisibilityColumns = map[string]string{
	"by_parent_workflow_id": "parent_workflow_id", "by_parent_run_id": "parent_run_id",
	"by_batcher_user":                  "BatcherUser",
	"by_temporal_scheduled_start_time": "TemporalScheduledStartTime", "by_temporal_scheduled_by_id": "TemporalScheduledById",
	"by_temporal_schedule_paused":              "TemporalSchedulePaused",
	"by_temporal_pause_info":                   "TemporalPauseInfo",
	"by_temporal_worker_deployment_version":    "TemporalWorkerDeploymentVersion",
	"by_temporal_workflow_versioning_behavior": "TemporalWorkflowVersioningBehavior",
	"by_temporal_worker_deployment":            "TemporalWorkerDeployment",
	"by_bool_01":                               "Bool01", "by_bool_02": "Bool02", "by_bool_03": "Bool03",
	"by_datetime_01": "Datetime01", "by_datetime_02": "Datetime02", "by_datetime_03": "Datetime03",
	"by_double_01": "Double01", "by_double_02": "Double02", "by_double_03": "Double03",
	"by_int_01": "Int01", "by_int_02": "Int02", "by_int_03": "Int03",
	"by_keyword_01": "Keyword01", "by_keyword_02": "Keyword02", "by_keyword_03": "Keyword03", "by_keyword_04": "Keyword04",
	"by_keyword_05": "Keyword05", "by_keyword_06": "Keyword06", "by_keyword_07": "Keyword07", "by_keyword_08": "Keyword08",
	"by_keyword_09": "Keyword09", "by_keyword_10": "Keyword10",
	"by_temporal_bool_01": "TemporalBool01", "by_temporal_bool_02": "TemporalBool02",
	"by_temporal_datetime_01": "TemporalDatetime01", "by_temporal_datetime_02": "TemporalDatetime02",
	"by_temporal_double_01": "TemporalDouble01", "by_temporal_double_02": "TemporalDouble02",
	"by_temporal_int_01": "TemporalInt01", "by_temporal_int_02": "TemporalInt02",
	"by_temporal_keyword_01": "TemporalKeyword01", "by_temporal_keyword_02": "TemporalKeyword02",
	"by_temporal_keyword_03": "TemporalKeyword03", "by_temporal_keyword_04": "TemporalKeyword04",
	"by_temporal_low_cardinality_keyword_01": "TemporalLowCardinalityKeyword01",
}

// trimVisibilityIndexes drops statisticsVisibilityIndexes and makes the
// indexes of sparseVisibilityColumns partial. Every statement is a no-op
// once done (IF EXISTS, IF NOT EXISTS), so it runs on every start and
// covers files created by earlier versions; the first start on a large
// file builds the partial indexes once.
func trimVisibilityIndexes(conf *config.SQL) error {
	// The SQLite plugin keeps one connection per database for the life of
	// the process (its Close only counts references); this borrows it.
	db, err := persistencesql.NewSQLAdminDB(sqlplugin.DbKindUnknown, conf, resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("open the embedded Temporal database %s: %w", conf.DatabaseName, err)
	}
	defer db.Close()
	var stmts []string
	for _, name := range statisticsVisibilityIndexes {
		stmts = append(stmts, "DROP INDEX IF EXISTS "+name)
	}
	for name, column := range sparseVisibilityColumns {
		stmts = append(stmts, "DROP INDEX IF EXISTS "+name, fmt.Sprintf(
			"CREATE INDEX IF NOT EXISTS %s_set ON executions_visibility (namespace_id, %s, (COALESCE(close_time, '9999-12-31 23:59:59+00:00')) DESC, start_time DESC, run_id) WHERE %[2]s IS NOT NULL",
			name, column))
	}
	// One transaction: one commit, and a start interrupted while building
	// the partial indexes of a large file (each a scan of the table) leaves
	// the stock indexes in place for the next one to redo.
	if err := db.Exec("BEGIN"); err != nil {
		return fmt.Errorf("trim the embedded visibility indexes in %s: %w", conf.DatabaseName, err)
	}
	for _, stmt := range stmts {
		if err := db.Exec(stmt); err != nil {
			_ = db.Exec("ROLLBACK")
			return fmt.Errorf("trim the embedded visibility indexes in %s: %w", conf.DatabaseName, err)
		}
	}
	if err := db.Exec("COMMIT"); err != nil {
		return fmt.Errorf("trim the embedded visibility indexes in %s: %w", conf.DatabaseName, err)
	}
	return nil
}

// httpAddress is the frontend's HTTP API address, or empty when port is 0
// (no HTTP API).
func httpAddress(ip string, port int) string {
	if port == 0 {
		return ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// freePort is a TCP port free on ip that the kernel hands to nobody else
// for a minute: the services bind theirs only once the server starts, and
// a port that was merely free could meanwhile become another socket's
// (Temporal exits when a listener fails). The port is reserved by a
// connection to it that this side closes first, whose end then waits in
// TIME_WAIT on the port (60 s on Linux): no bind to port 0 and no
// outgoing connection gets a port in that state, while a listener that
// sets SO_REUSEADDR, as Go's and so Temporal's do, still binds it. The
// reservation is best effort: where it cannot be made, the port is only
// free.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)
	dial := addr.IP
	if dial.IsUnspecified() {
		dial = net.IPv4(127, 0, 0, 1)
		if addr.IP.To4() == nil {
			dial = net.IPv6loopback
		}
	}
	deadline := time.Now().Add(time.Second)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(dial.String(), strconv.Itoa(addr.Port)), time.Second)
	if err != nil {
		return addr.Port, nil
	}
	defer c.Close()
	_ = l.(*net.TCPListener).SetDeadline(deadline)
	accepted, err := l.Accept()
	if err != nil {
		return addr.Port, nil
	}
	// This side closes first, so its end of the connection is the one in
	// TIME_WAIT; the other side's read sees the close before it closes.
	_ = accepted.Close()
	_ = c.SetReadDeadline(deadline)
	_, _ = c.Read(make([]byte, 1))
	return addr.Port, nil
}

// portFree reports an error if ip:port cannot be listened on.
func portFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is not free: %w", port, ip, err)
	}
	return l.Close()
}

// quietLogger drops the SDK client's log lines while waiting for readiness.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
