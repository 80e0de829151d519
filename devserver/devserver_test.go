package devserver_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

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
