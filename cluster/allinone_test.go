package cluster

import (
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/devserver/pgtest"
)

// JOBGATE_EMBEDDED_STORE=postgres://… runs the all-in-one binary's embedded
// Temporal on PostgreSQL: it creates the databases and schemas on first
// start, runs a job, and after a restart on the same databases the job is
// still there.
func TestAllInOneOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and the binary")
	}
	pg := pgtest.Start(t)
	s := &stack{t: t, bin: mustBuild(t), dataDir: t.TempDir()}
	s.env = []string{
		"JOBGATE_EMBEDDED_STORE=" + pg.URL("allinone"),
		"JOBGATE_EMBEDDED_TEMPORAL_PORT=" + strconv.Itoa(freePort(t)),
		"JOBGATE_EMBEDDED_UI_PORT=0",
		"JOBGATE_DATA_DIR=" + s.dataDir,
		"JOBGATE_LOG_LEVEL=warn",
	}
	p := s.start("all-in-one", "all")
	s.apis = []*proc{p, p}
	s.waitReady(p, 90*time.Second)
	require.Contains(t, p.out.String(), "data in PostgreSQL")
	id := s.submit(0, "", `{"kind":"sleep","input":{"seconds":0}}`, "Idempotency-Key", "outlives-restarts")
	s.waitState("", id, "succeeded", time.Minute)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	<-p.done
	p = s.start("all-in-one again", "all")
	s.apis = []*proc{p, p}
	s.waitReady(p, 90*time.Second)
	r := s.do(0, "", http.MethodGet, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusSeeOther, r.status, "the job outlived the restart, in PostgreSQL: %s", r.body)
	// The deployment secret generated in the data directory outlived it
	// too: the key still names the job.
	replay := s.do(0, "", http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":0}}`, "Idempotency-Key", "outlives-restarts")
	require.Equal(t, http.StatusAccepted, replay.status, "body: %s", replay.body)
	require.Equal(t, "true", replay.header.Get("Idempotent-Replayed"))
	require.Equal(t, id, replay.json(t)["id"])
}
