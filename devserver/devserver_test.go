package devserver_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	sqltool "go.temporal.io/server/tools/sql"

	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/devserver/pgtest"
)

// The production stack's dynamic config (docker-compose.yml mounts it into
// Temporal) loads into the real server without a key it does not know or a
// value it rejects; Temporal itself would only log those and go on.
func TestDeployDynamicConfigLoads(t *testing.T) {
	t.Parallel()
	srv, err := devserver.Start(devserver.Options{LogLevel: "none", DynamicConfigFile: filepath.Join("..", "deploy", "temporal", "dynamicconfig.yaml")})
	require.NoError(t, err)
	require.NoError(t, srv.Stop())
}

func TestDynamicConfigUnknownKeyFailsStart(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "dc.yaml")
	require.NoError(t, os.WriteFile(file, []byte("frontend.enableClientVersionCheck:\n  - value: true\n"), 0o600))
	_, err := devserver.Start(devserver.Options{LogLevel: "none", DynamicConfigFile: file})
	require.ErrorContains(t, err, `unregistered key "frontend.enableclientversioncheck"`)
}

// On PostgreSQL the server creates both databases, sets up their schemas
// from the server module's embedded files, creates the namespace with its
// search attributes, and keeps workflows in PostgreSQL: a second server on
// the same databases (the schema already current) sees them.
func TestPostgresStore(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	pg := pgtest.Start(t)
	initdb := time.Since(begin)
	opts := devserver.Options{
		Postgres:         pg.URL("temporal"),
		LogLevel:         "none",
		SearchAttributes: map[string]enumspb.IndexedValueType{"JobTenant": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	}
	srv, err := devserver.Start(opts)
	require.NoError(t, err)
	t.Logf("initdb and PostgreSQL start: %s; to a ready Temporal namespace: %s",
		initdb.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "pg-store", TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporalTenant("acme"),
	}, "SomeWorkflow")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `JobTenant = "acme"`})
		return err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == "pg-store"
	}, 30*time.Second, 50*time.Millisecond, "the workflow is listed from SQL visibility by its search attribute")
	c.Close()
	require.NoError(t, srv.Stop())

	srv, err = devserver.Start(opts)
	require.NoError(t, err)
	defer srv.Stop()
	c2, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer c2.Close()
	desc, err := c2.DescribeWorkflowExecution(ctx, "pg-store", run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
}

// docker-compose.yml's temporal-schema job runs deploy/temporal/setup-schema.sh
// with the admin-tools image's temporal-sql-tool. Here the same script runs
// with the tool built from this server version, twice (a second run changes
// nothing), and a server then starts on the databases it prepared.
func TestComposeSchemaScript(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	bin := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "temporal-sql-tool"), "go.temporal.io/server/cmd/tools/sql").CombinedOutput()
	require.NoError(t, err, "build temporal-sql-tool: %s", out)
	host, port, err := net.SplitHostPort(pg.Address())
	require.NoError(t, err)
	for range 2 {
		cmd := exec.Command("sh", filepath.Join("..", "deploy", "temporal", "setup-schema.sh"))
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"POSTGRES_SEEDS="+host, "DB_PORT="+port, "POSTGRES_USER=postgres", "POSTGRES_PWD=unused",
			"DBNAME=composed", "VISIBILITY_DBNAME=composed_visibility")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "setup-schema.sh: %s", out)
	}
	for db, want := range map[string]string{"composed": pgschema.Version, "composed_visibility": pgschema.VisibilityVersion} {
		conn, err := sqltool.NewConnection(&config.SQL{PluginName: "postgres12_pgx", ConnectAddr: pg.Address(), ConnectProtocol: "tcp",
			User: "postgres", DatabaseName: db}, log.NewNoopLogger())
		require.NoError(t, err)
		version, err := conn.ReadSchemaVersion()
		conn.Close()
		require.NoError(t, err)
		require.Equal(t, want, version, "the script brought %s to this server's schema version", db)
	}
	srv, err := devserver.Start(devserver.Options{
		Postgres: pg.URL("composed") + "&visibility_database=composed_visibility",
		LogLevel: "none",
	})
	require.NoError(t, err)
	require.NoError(t, srv.Stop())
}
