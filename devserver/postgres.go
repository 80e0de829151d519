package devserver

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The server module's embedded PostgreSQL schemas, the ones Temporal's
// temporal-sql-tool and admin-tools image apply.
const (
	postgresSchema           = "postgresql/v12/temporal"
	postgresVisibilitySchema = "postgresql/v12/visibility"
)

// postgresStores turns a postgres:// URL into the SQL configuration of the
// main store (the URL's database, default "temporal") and of the visibility
// store (the database named by the URL's visibility_database parameter,
// default the main one's name with "_visibility"). The other query
// parameters are passed to the driver (sslmode=disable, for example).
func postgresStores(raw string) (main, visibility *config.SQL, err error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, nil, fmt.Errorf("embedded Temporal store: %q is not a postgres://user:password@host:port/database URL", redactURL(raw))
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	database := strings.TrimPrefix(u.Path, "/")
	if database == "" {
		database = "temporal"
	}
	attrs := map[string]string{}
	visName := database + "_visibility"
	for k, v := range u.Query() {
		if k == "visibility_database" {
			visName = v[0]
			continue
		}
		attrs[k] = v[0]
	}
	password, _ := u.User.Password()
	base := config.SQL{
		PluginName:      postgresplugin.PluginNamePGX,
		ConnectAddr:     host,
		ConnectProtocol: "tcp",
		User:            u.User.Username(),
		Password:        password,
		// Room for every service's pool (history, matching, frontend and
		// the internal worker each open their own) on a server with
		// PostgreSQL's default max_connections of 100.
		MaxConns:          20,
		MaxIdleConns:      20,
		MaxConnLifetime:   time.Hour,
		ConnectAttributes: attrs,
	}
	m, v := base, base
	m.DatabaseName, v.DatabaseName = database, visName
	m.ConnectAttributes, v.ConnectAttributes = cloneMap(attrs), cloneMap(attrs)
	return &m, &v, nil
}

// setupPostgres creates the database of conf if it is missing, then sets up
// or migrates its schema to the one this server version needs, as
// temporal-sql-tool's create-database, setup-schema -v 0.0 and
// update-schema do. Every step is a no-op when already done, so it runs on
// every start.
func setupPostgres(conf *config.SQL, schemaName string) error {
	logger := log.NewNoopLogger()
	where := fmt.Sprintf("PostgreSQL database %q at %s", conf.DatabaseName, conf.ConnectAddr)
	conn, err := sqltool.NewConnection(conf, logger)
	if err != nil {
		return fmt.Errorf("embedded Temporal store: connect to %s: %w", where, err)
	}
	if _, err := conn.ListTables(); err != nil {
		// Most likely the database does not exist yet: create it from the
		// server's maintenance database.
		conn.Close()
		admin := *conf
		if cerr := sqltool.DoCreateDatabase(&admin, "postgres", logger); cerr != nil {
			return fmt.Errorf("embedded Temporal store: %s: %v; creating it failed: %w (create it, or let the user create databases)", where, err, cerr)
		}
		if conn, err = sqltool.NewConnection(conf, logger); err != nil {
			return fmt.Errorf("embedded Temporal store: connect to %s: %w", where, err)
		}
	}
	defer conn.Close()
	if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return fmt.Errorf("embedded Temporal store: set up the schema version tables in %s: %w", where, err)
	}
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: conf.DatabaseName, SchemaName: schemaName}, logger).Run(); err != nil {
		return fmt.Errorf("embedded Temporal store: migrate the schema of %s: %w", where, err)
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// redactURL hides a URL's password, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// postgresConfig prepares both PostgreSQL databases and the namespace, and
// returns the main store's configuration.
func postgresConfig(opts Options) (*config.SQL, error) {
	main, vis, err := postgresStores(opts.Postgres)
	if err != nil {
		return nil, err
	}
	if err := setupPostgres(main, postgresSchema); err != nil {
		return nil, err
	}
	if err := setupPostgres(vis, postgresVisibilitySchema); err != nil {
		return nil, err
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal namespace %q: %w", opts.Namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(opts.Retention)
	// (CreateNamespaces writes through any SQL plugin, PostgreSQL's too, and
	// leaves an existing namespace as it is.)
	if err := sqliteschema.CreateNamespaces(main, ns); err != nil {
		return nil, fmt.Errorf("create embedded Temporal namespace %q in PostgreSQL: %w", opts.Namespace, err)
	}
	return main, nil
}

// postgresHistoryShards is the number of history shards of a server on
// PostgreSQL. It is fixed when the database is first used: more shards
// let more database transactions run at once (SQLite has one connection,
// so it keeps one).
const postgresHistoryShards = 4

// usePostgres points conf's stores at PostgreSQL: main as the default
// store, the visibility database beside it.
func usePostgres(conf *config.Config, main *config.SQL, raw string) {
	_, vis, _ := postgresStores(raw) // parsed without error by postgresConfig
	conf.Persistence.DefaultStore = "postgres-default"
	conf.Persistence.VisibilityStore = "postgres-visibility"
	conf.Persistence.NumHistoryShards = postgresHistoryShards
	conf.Persistence.DataStores = map[string]config.DataStore{
		"postgres-default":    {SQL: main},
		"postgres-visibility": {SQL: vis},
	}
}
