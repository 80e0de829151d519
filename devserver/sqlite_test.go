package devserver_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/devserver"
)

// The SQLite store drops the visibility indexes of execution statistics,
// makes those of columns most workflows leave NULL partial
// (trimVisibilityIndexes), keeps the rest, and a query on a tenant uses
// its partial index. (The listing tests of e2e filter by tenant, kind and
// state through them, on the in-memory store, which gets the same
// indexes.)
func TestSQLiteVisibilityIndexes(t *testing.T) {
	// The server holds its file in SQLite's exclusive locking mode until
	// its process ends: a child process (this test binary again) creates
	// the file.
	if file := os.Getenv("DEVSERVER_TEST_SQLITE_FILE"); file != "" {
		srv, err := devserver.Start(devserver.Options{DatabaseFile: file, LogLevel: "none"})
		require.NoError(t, err)
		require.NoError(t, srv.Stop())
		return
	}
	t.Parallel()
	file := filepath.Join(t.TempDir(), "temporal.db")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSQLiteVisibilityIndexes$")
	child.Env = append(os.Environ(), "DEVSERVER_TEST_SQLITE_FILE="+file)
	out, err := child.CombinedOutput()
	require.NoError(t, err, "the server on %s:\n%s", file, out)

	// The driver is the one the embedded server uses, registered by it.
	db, err := sql.Open("sqlite", file)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	indexes := map[string]string{}
	rows, err := db.Query(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility'`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		var def sql.NullString
		require.NoError(t, rows.Scan(&name, &def))
		indexes[name] = def.String
	}
	require.NoError(t, rows.Err())
	for _, gone := range []string{"by_history_length", "by_execution_duration", "by_keyword_01", "by_bool_01", "by_parent_workflow_id", "by_temporal_namespace_division_set"} {
		require.NotContains(t, indexes, gone)
	}
	for name, column := range map[string]string{"by_keyword_01_set": "Keyword01", "by_keyword_03_set": "Keyword03", "by_int_02_set": "Int02",
		"by_temporal_scheduled_by_id_set": "TemporalScheduledById", "by_parent_workflow_id_set": "parent_workflow_id"} {
		require.Contains(t, indexes, name)
		require.Contains(t, indexes[name], "WHERE "+column+" IS NOT NULL", name)
	}
	for _, kept := range []string{"default_idx", "by_status", "by_workflow_type", "by_workflow_id", "by_task_queue", "by_temporal_namespace_division"} {
		require.Contains(t, indexes, kept)
		require.NotContains(t, indexes[kept], "WHERE", kept)
	}

	var plan strings.Builder
	prow, err := db.Query(`EXPLAIN QUERY PLAN SELECT run_id FROM executions_visibility WHERE namespace_id = 'x' AND Keyword02 = 'alpha' ORDER BY COALESCE(close_time, '9999-12-31 23:59:59+00:00') DESC, start_time DESC, run_id LIMIT 25`)
	require.NoError(t, err)
	for prow.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, prow.Scan(&id, &parent, &unused, &detail))
		plan.WriteString(detail)
	}
	require.NoError(t, prow.Err())
	require.Contains(t, plan.String(), "by_keyword_02_set")
}
