package cluster

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/jobgate/jobgate/engine"
)

// One stack, the parts in order: those that need every process first, the
// restart and the outages after, the SIGKILL of a worker last.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, Temporal and four jobgate processes")
	}
	s := startStack(t)

	t.Run("submit, poll, 303, result across API processes", func(t *testing.T) {
		s.t = t
		id := s.submit(0, "basic", `{"kind":"sleep","input":{"seconds":1}}`)
		s.waitState("basic", id, "succeeded", time.Minute)
		r := s.do(1, "basic", http.MethodGet, "/v1/jobs/"+id, "")
		require.Equal(t, http.StatusSeeOther, r.status)
		require.Equal(t, "/v1/jobs/"+id+"/result", r.header.Get("Location"))
		res := s.do(0, "basic", http.MethodGet, "/v1/jobs/"+id+"/result", "")
		require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
	})

	t.Run("cancel", func(t *testing.T) {
		s.t = t
		id := s.submit(0, "basic", `{"kind":"sleep","input":{"seconds":60}}`)
		s.waitState("basic", id, "running", time.Minute)
		require.Equal(t, http.StatusAccepted, s.do(1, "basic", http.MethodDelete, "/v1/jobs/"+id, "").status)
		body := s.waitState("basic", id, "canceled", 30*time.Second)
		require.EqualValues(t, 1, body["attempt"])
	})

	t.Run("one Idempotency-Key racing over both APIs is one workflow", func(t *testing.T) {
		s.t = t
		const racers = 12
		ids := make([]string, racers)
		statuses := make([]int, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				r := s.do(i%2, "idem", http.MethodPost, "/v1/jobs", `{"kind":"sleep","input":{"seconds":1}}`, "Idempotency-Key", "race-1")
				statuses[i] = r.status
				if r.status == http.StatusAccepted {
					ids[i], _ = r.json(t)["id"].(string)
				}
			})
		}
		wg.Wait()
		for i := range racers {
			require.Equal(t, http.StatusAccepted, statuses[i], "racer %d", i)
			require.Equal(t, ids[0], ids[i], "racer %d got the same job", i)
		}
		// Both APIs keyed it with the configured secret (none generated one
		// in the data directory they share).
		require.Equal(t, engine.KeyedID([]byte(s.deploymentSecret), "idem", "race-1"), ids[0])
		_, err := os.Stat(filepath.Join(s.dataDir, "deployment-secret"))
		require.ErrorIs(t, err, fs.ErrNotExist)
		s.waitState("idem", ids[0], "succeeded", time.Minute)
		// Closed, so visibility has it; one run of one workflow ID.
		eventually(t, 30*time.Second, "visibility lists the job", func() bool {
			return s.count(fmt.Sprintf(`WorkflowId = %q`, ids[0])) >= 1
		})
		require.EqualValues(t, 1, s.count(fmt.Sprintf(`WorkflowId = %q`, ids[0])), "one workflow run for the key")
	})

	t.Run("listing filters and pages on SQL visibility", func(t *testing.T) {
		s.t = t
		var done []string
		for i := range 4 {
			done = append(done, s.submit(i%2, "list", `{"kind":"sleep","input":{"seconds":0}}`))
		}
		running := s.submit(0, "list", `{"kind":"sleep","input":{"seconds":60}}`)
		for _, id := range done {
			s.waitState("list", id, "succeeded", time.Minute)
		}
		s.waitState("list", running, "running", time.Minute)
		listed := func(query string) []string {
			r := s.do(1, "list", http.MethodGet, "/v1/jobs?"+query, "")
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			var ids []string
			for _, j := range r.json(t)["jobs"].([]any) {
				ids = append(ids, j.(map[string]any)["id"].(string))
			}
			return ids
		}
		eventually(t, 30*time.Second, "the finished jobs are listed", func() bool {
			return len(listed("state=succeeded&kind=sleep")) == 4
		})
		require.ElementsMatch(t, done, listed("state=succeeded&kind=sleep"))
		require.Equal(t, []string{running}, listed("state=running"))
		require.Empty(t, listed("kind=export"))

		// Pages of two, following the cursor from one API to the other.
		var paged []string
		path := "/v1/jobs?state=succeeded&limit=2"
		pages, emptyPages := 0, 0
		for path != "" && pages < 5 {
			r := s.do(pages%2, "list", http.MethodGet, path, "")
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			body := r.json(t)
			jobs := body["jobs"].([]any)
			if len(jobs) == 0 {
				emptyPages++
			}
			for _, j := range jobs {
				paged = append(paged, j.(map[string]any)["id"].(string))
			}
			pages++
			path = ""
			if next, _ := body["nextCursor"].(string); next != "" {
				path = "/v1/jobs?state=succeeded&limit=2&cursor=" + next
			}
		}
		require.ElementsMatch(t, done, paged, "the pages hold each job once")
		t.Logf("4 jobs in pages of 2: %d pages, %d of them empty", pages, emptyPages)
		require.Equal(t, http.StatusAccepted, s.do(0, "list", http.MethodDelete, "/v1/jobs/"+running, "").status)
	})

	t.Run("export", func(t *testing.T) {
		s.t = t
		var ids []string
		for range 3 {
			ids = append(ids, s.submit(0, "export", `{"kind":"sleep","input":{"seconds":0}}`))
		}
		for _, id := range ids {
			s.waitState("export", id, "succeeded", time.Minute)
		}
		eventually(t, 30*time.Second, "visibility has the finished jobs", func() bool {
			return s.count(`JobTenant = "export" AND ExecutionStatus = "Completed"`) == 3
		})
		id := s.submit(1, "export", `{"kind":"export","input":{"format":"csv","filter":{"kind":"sleep"}}}`)
		s.waitState("export", id, "succeeded", time.Minute)
		// Written by a worker, streamed by the other API.
		r := s.do(0, "export", http.MethodGet, "/v1/jobs/"+id+"/result", "")
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Equal(t, "text/csv; charset=utf-8", r.header.Get("Content-Type"))
		for _, jid := range ids {
			require.Contains(t, string(r.body), jid)
		}
	})

	t.Run("webhooks", func(t *testing.T) {
		s.t = t
		wh, err := standardwebhooks.NewWebhook(s.secrets["hooks"])
		require.NoError(t, err)
		got := make(chan map[string]string, 4)
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := wh.Verify(body, r.Header); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			got <- map[string]string{"id": r.Header.Get("webhook-id"), "body": string(body)}
		}))
		defer recv.Close()
		id := s.submit(1, "hooks", fmt.Sprintf(`{"kind":"sleep","input":{"seconds":1},"callbackUrl":%q}`, recv.URL+"/hook"))
		select {
		case m := <-got:
			require.Contains(t, m["id"], "_succeeded")
			require.Contains(t, m["body"], id)
			require.Contains(t, m["body"], `"job.succeeded"`)
		case <-time.After(time.Minute):
			t.Fatal("no signed webhook within a minute")
		}
	})

	t.Run("a Temporal restart restarts no running job", func(t *testing.T) {
		s.t = t
		var ids []string
		for i := range 4 {
			ids = append(ids, s.submit(i%2, "restart", `{"kind":"sleep","input":{"seconds":12}}`))
		}
		for _, id := range ids {
			s.waitState("restart", id, "running", time.Minute)
		}
		down := s.restartTemporal(2 * time.Second)
		t.Logf("Temporal (on PostgreSQL) down for %s", down.Round(time.Millisecond))
		for _, id := range ids {
			body := s.waitState("restart", id, "succeeded", time.Minute)
			require.EqualValues(t, 1, body["attempt"], "job %s went on on its first attempt", id)
		}
	})

	t.Run("PostgreSQL outage: 503 with Retry-After, readiness follows, no job lost or doubled", func(t *testing.T) {
		s.t = t
		s.postgresOutage(t)
	})

	t.Run("a SIGKILLed worker's job moves to the other worker", func(t *testing.T) {
		s.t = t
		id := s.submit(0, "kill", `{"kind":"sleep","input":{"seconds":8}}`)
		s.waitState("kill", id, "running", time.Minute)
		var pid int
		eventually(t, 30*time.Second, "the running activity names its worker", func() bool {
			desc, err := s.tc.DescribeWorkflowExecution(context.Background(), id, "")
			if err != nil || len(desc.GetPendingActivities()) == 0 {
				return false
			}
			pid, _ = strconv.Atoi(strings.SplitN(desc.GetPendingActivities()[0].GetLastWorkerIdentity(), "@", 2)[0])
			return pid > 0
		})
		var victim, survivor *proc
		for _, w := range s.workers {
			if w.cmd.Process.Pid == pid {
				victim = w
			} else {
				survivor = w
			}
		}
		require.NotNil(t, victim, "the job runs on one of the two workers (identity pid %d)", pid)
		require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
		<-victim.done
		body := s.waitState("kill", id, "succeeded", 90*time.Second)
		require.EqualValues(t, 2, body["attempt"], "the job ran again, on the other worker")
		desc, err := s.tc.DescribeWorkflowExecution(context.Background(), id, "")
		require.NoError(t, err)
		require.NotNil(t, desc)
		require.Equal(t, http.StatusOK, s.probe(survivor))
	})
}

// count counts the workflows visibility holds for query.
func (s *stack) count(query string) int64 {
	s.t.Helper()
	resp, err := s.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
	require.NoError(s.t, err)
	return resp.GetCount()
}
