package saga_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/examples/saga"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
	jobworker "github.com/jobgate/jobgate/worker"
	"github.com/jobgate/jobgate/workflows"
)

// temporalServer is the in-process Temporal server of this test binary;
// each test's shop has its own task queue on it.
var temporalServer *devserver.Server

func TestMain(m *testing.M) {
	srv, err := devserver.Start(devserver.Options{
		LogLevel: "none",
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start Temporal:", err)
		os.Exit(1)
	}
	temporalServer = srv
	code := m.Run()
	_ = srv.Stop()
	os.Exit(code)
}

// shop is jobgate-saga under test: the API on a real HTTP server and a
// worker, on the shared Temporal server, with a shop of its own.
type shop struct {
	t         *testing.T
	url       string
	temporal  client.Client
	inventory *saga.Inventory
	payments  *saga.Payments
}

var queueSeq atomic.Int64

// shopOptions are how a shop differs from the usual one.
type shopOptions struct {
	// stock replaces the 10 books and 5 lamps in stock.
	stock map[string]int
	// packTime is how long packing one item takes.
	packTime time.Duration
}

// mustOpenShop starts a shop with 10 books and 5 lamps in stock, alice
// with 100.00 in her account and bob with 5.00.
func mustOpenShop(t *testing.T, opts shopOptions) *shop {
	t.Helper()
	if opts.stock == nil {
		opts.stock = map[string]int{"book": 10, "lamp": 5}
	}
	s := &shop{
		t:         t,
		inventory: saga.NewInventory(opts.stock),
		payments:  saga.NewPayments(map[string]int64{"alice": 100_00, "bob": 5_00}),
	}
	kinds, err := job.NewRegistry(saga.Kind(&saga.Activities{Inventory: s.inventory, Payments: s.payments, PackTime: opts.packTime}))
	require.NoError(t, err)
	jobs := startJobs(t, kinds)
	s.temporal = jobs.temporal
	api := httptest.NewServer(httpapi.New(jobs.engine, kinds, httpapi.Config{Tenant: jobs.queue}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(api.Close)
	s.url = api.URL
	return s
}

// jobRunner is a worker and an engine for some kinds on the shared
// Temporal server, on a task queue of their own, which is also the tenant
// their jobs are submitted for.
type jobRunner struct {
	temporal client.Client
	engine   *engine.Service
	queue    string
}

func startJobs(t *testing.T, kinds *job.Registry) jobRunner {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: temporalServer.FrontendAddress(), Namespace: temporalServer.Namespace(), Logger: quietLogger{}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	queue := fmt.Sprintf("saga-%d-%d", time.Now().UnixNano(), queueSeq.Add(1))
	w := jobworker.New(c, queue, kinds, jobworker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return jobRunner{temporal: c, engine: engine.New(c, kinds, engine.Config{TaskQueue: queue, Namespace: temporalServer.Namespace(), EagerStart: true}), queue: queue}
}

// do sends a request with a JSON body (none when empty) and returns the
// status code and the decoded JSON answer (nil when there is none).
func (s *shop) do(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var m map[string]any
	if len(data) > 0 {
		require.NoError(s.t, json.Unmarshal(data, &m), "%s %s answered %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, m
}

// order submits an order and returns its job's id.
func (s *shop) order(input string) string {
	s.t.Helper()
	code, body := s.do(http.MethodPost, "/v1/jobs", `{"kind":"order","input":`+input+`}`)
	require.Equal(s.t, http.StatusAccepted, code, "%v", body)
	return body["id"].(string)
}

// status polls the order's status until cond holds, and returns it.
func (s *shop) status(id, what string, cond func(status map[string]any) bool) map[string]any {
	s.t.Helper()
	var last map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, last = s.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
		if cond(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("order %s: %s: not seen in 30s; last status %v", id, what, last)
	return nil
}

// waitState polls the order's status until it is in state.
func (s *shop) waitState(id string, state job.State) map[string]any {
	s.t.Helper()
	return s.status(id, "state "+string(state), func(st map[string]any) bool { return st["state"] == string(state) })
}

// waitApproval polls the order's status until it waits for its approval.
func (s *shop) waitApproval(id string) map[string]any {
	s.t.Helper()
	return s.status(id, "waiting for approval", func(st map[string]any) bool {
		w, _ := st["waitingFor"].([]any)
		return len(w) == 1 && w[0].(map[string]any)["name"] == saga.ApprovalInput
	})
}

// history returns the order's workflow history.
func (s *shop) history(id string) *historypb.History {
	s.t.Helper()
	return historyOf(s.t, s.temporal, id)
}

// historyOf is workflow id's history.
func historyOf(t *testing.T, c client.Client, id string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}

// replayOn replays workflow id's history on the Job workflow with kinds.
func replayOn(kinds *job.Registry, history *historypb.History, id string) error {
	replayer := worker.NewWorkflowReplayer()
	workflows.Register(replayer, kinds)
	return replayer.ReplayWorkflowHistoryWithOptions(quietLogger{}, history,
		worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}})
}

// activities returns the activity types the order's workflow scheduled,
// in the order its history records them. With JOBGATE_RECORD_HISTORIES
// set, it also keeps the history as testdata/histories/<name>--<id>.json
// for TestReplayHistories.
func (s *shop) activities(name, id string) []string {
	s.t.Helper()
	h := s.history(id)
	if os.Getenv("JOBGATE_RECORD_HISTORIES") != "" {
		data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		require.NoError(s.t, err)
		require.NoError(s.t, os.WriteFile(filepath.Join("testdata", "histories", name+"--"+id+".json"), data, 0o644))
	}
	var types []string
	for _, ev := range h.Events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types = append(types, a.GetActivityType().GetName())
		}
	}
	return types
}

// steps returns the names and states of a status's steps, in order.
func steps(status map[string]any) []string {
	var out []string
	list, _ := status["steps"].([]any)
	for _, s := range list {
		m := s.(map[string]any)
		out = append(out, m["name"].(string)+":"+m["state"].(string))
	}
	return out
}

const twoBooks = `{"customer":"alice","items":[{"sku":"book","quantity":2},{"sku":"lamp","quantity":1}],"amount":4500}`

// An approved order reserves, charges and ships, each once, and its result
// says what each step made; while it waits, its status shows the steps
// done, the wait and the progress.
func TestOrderApproved(t *testing.T) {
	t.Parallel()
	s := mustOpenShop(t, shopOptions{})
	id := s.order(twoBooks)

	waiting := s.waitApproval(id)
	require.Equal(t, "running", waiting["state"])
	require.Equal(t, []string{"reserve:succeeded", "charge:succeeded", "approval:running"}, steps(waiting))
	progress := waiting["progress"].(map[string]any)
	require.EqualValues(t, 2, progress["current"])
	require.EqualValues(t, 4, progress["total"])
	require.Nil(t, waiting["estimatedCompletion"])
	require.Equal(t, 8, s.inventory.Stock("book"))
	require.EqualValues(t, 55_00, s.payments.Balance("alice"))

	// The workflow's validator refuses a rejection without a reason; the
	// order keeps waiting.
	code, problem := s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":false}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, "%v", problem)
	require.Contains(t, problem["detail"], "a rejection needs a comment")
	code, problem = s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":"yes"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code, "%v", problem)

	code, taken := s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":true,"comment":"fine"}`)
	require.Equal(t, http.StatusOK, code, "%v", taken)

	done := s.waitState(id, job.StateSucceeded)
	require.Equal(t, []string{"reserve:succeeded", "charge:succeeded", "approval:succeeded", "ship:succeeded"}, steps(done))
	require.EqualValues(t, 4, done["progress"].(map[string]any)["current"])
	code, result := s.do(http.MethodGet, "/v1/jobs/"+id+"/result", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{
		"reservation": "res-" + id,
		"payment":     "pay-" + id,
		"tracking":    "trk-" + id,
		"approval":    map[string]any{"approved": true, "comment": "fine"},
	}, result)

	require.Equal(t, []string{"Reserve", "Charge", "Ship"}, s.activities("approved", id))
	require.True(t, s.inventory.Shipped(id))
	require.Equal(t, 8, s.inventory.Stock("book"))
	require.Equal(t, 4, s.inventory.Stock("lamp"))
	require.EqualValues(t, 45_00, s.payments.Charged(id))
	require.EqualValues(t, 55_00, s.payments.Balance("alice"))

	// The order waits no more.
	code, problem = s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":true}`)
	require.Equal(t, http.StatusConflict, code, "%v", problem)
}

// A rejected order fails with the manager's reason, after refunding the
// payment and then releasing the reservation.
func TestOrderRejected(t *testing.T) {
	t.Parallel()
	s := mustOpenShop(t, shopOptions{})
	id := s.order(twoBooks)
	s.waitApproval(id)

	code, taken := s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":false,"comment":"too many lamps this month"}`)
	require.Equal(t, http.StatusOK, code, "%v", taken)

	failed := s.waitState(id, job.StateFailed)
	require.Equal(t, "the manager rejected the order: too many lamps this month", failed["error"].(map[string]any)["detail"])
	require.Equal(t, []string{"reserve:succeeded", "charge:succeeded", "approval:succeeded", "refund:succeeded", "release:succeeded"}, steps(failed))
	require.Equal(t, []string{"Reserve", "Charge", "Refund", "Release"}, s.activities("rejected", id))
	require.Equal(t, "undone: the manager rejected the order: too many lamps this month", failed["progress"].(map[string]any)["message"])
	requireUndone(t, s, id)
}

// A DELETE while the order waits for its approval refunds, then releases,
// as the workflow's history records, and the order ends canceled.
func TestOrderCanceledWhileWaiting(t *testing.T) {
	t.Parallel()
	s := mustOpenShop(t, shopOptions{})
	id := s.order(twoBooks)
	s.waitApproval(id)

	code, body := s.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, code, "%v", body)

	canceled := s.waitState(id, job.StateCanceled)
	require.Equal(t, []string{"Reserve", "Charge", "Refund", "Release"}, s.activities("canceled-waiting", id))
	require.Equal(t, []string{"reserve:succeeded", "charge:succeeded", "approval:canceled", "refund:succeeded", "release:succeeded"}, steps(canceled))
	require.Empty(t, canceled["waitingFor"])
	require.Equal(t, "undone: canceled", canceled["progress"].(map[string]any)["message"])
	requireUndone(t, s, id)
}

// A DELETE while the parcel is packed stops the packing (a heartbeat
// delivers the cancellation), then refunds and releases; nothing ships.
func TestOrderCanceledWhileShipping(t *testing.T) {
	t.Parallel()
	// Thirty items at a second each: the packing outlasts the test unless
	// the cancellation stops it.
	stock := map[string]int{}
	var items []string
	for i := range 30 {
		stock[fmt.Sprintf("sku-%d", i)] = 1
		items = append(items, fmt.Sprintf(`{"sku":"sku-%d","quantity":1}`, i))
	}
	s := mustOpenShop(t, shopOptions{stock: stock, packTime: time.Second})
	id := s.order(`{"customer":"alice","items":[` + strings.Join(items, ",") + `],"amount":100}`)
	s.waitApproval(id)
	code, _ := s.do(http.MethodPost, "/v1/jobs/"+id+"/inputs/approval", `{"approved":true}`)
	require.Equal(t, http.StatusOK, code)
	s.status(id, "shipping", func(st map[string]any) bool {
		got := steps(st)
		return len(got) == 4 && got[3] == "ship:running"
	})

	code, body := s.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	canceled := s.waitState(id, job.StateCanceled)
	require.Equal(t, []string{"Reserve", "Charge", "Ship", "Refund", "Release"}, s.activities("canceled-shipping", id))
	require.Equal(t, []string{"reserve:succeeded", "charge:succeeded", "approval:succeeded", "ship:canceled", "refund:succeeded", "release:succeeded"}, steps(canceled))
	require.False(t, s.inventory.Shipped(id))
	require.Equal(t, 1, s.inventory.Stock("sku-0"))
	require.EqualValues(t, 100_00, s.payments.Balance("alice"))
}

// A step that fails (bob's balance is short) fails the order at once and
// undoes the steps reached, in reverse order; the order never waits.
func TestOrderPaymentDeclined(t *testing.T) {
	t.Parallel()
	s := mustOpenShop(t, shopOptions{})
	id := s.order(`{"customer":"bob","items":[{"sku":"book","quantity":1}],"amount":2000}`)

	failed := s.waitState(id, job.StateFailed)
	errBody := failed["error"].(map[string]any)
	require.Contains(t, errBody["title"], "payment-declined")
	require.Contains(t, errBody["detail"], "payment declined")
	require.Equal(t, []string{"reserve:succeeded", "charge:failed", "refund:succeeded", "release:succeeded"}, steps(failed))
	require.Equal(t, []string{"Reserve", "Charge", "Refund", "Release"}, s.activities("payment-declined", id))
	require.Equal(t, 10, s.inventory.Stock("book"))
	require.EqualValues(t, 5_00, s.payments.Balance("bob"))
}

// An order is checked before it is accepted: by its schema, and by the
// kind's own rule that each SKU comes once.
func TestOrderValidation(t *testing.T) {
	t.Parallel()
	s := mustOpenShop(t, shopOptions{})
	for name, input := range map[string]string{
		"no items":      `{"customer":"alice","items":[],"amount":100}`,
		"no amount":     `{"customer":"alice","items":[{"sku":"book","quantity":1}]}`,
		"unknown field": `{"customer":"alice","items":[{"sku":"book","quantity":1}],"amount":100,"coupon":"x"}`,
		"sku twice":     `{"customer":"alice","items":[{"sku":"book","quantity":1},{"sku":"book","quantity":2}],"amount":100}`,
	} {
		code, body := s.do(http.MethodPost, "/v1/jobs", `{"kind":"order","input":`+input+`}`)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s: %v", name, body)
	}
}

// requireUndone checks that the order's payment was refunded and its
// reservation released: the shop is as before the order.
func requireUndone(t *testing.T, s *shop, id string) {
	t.Helper()
	require.False(t, s.inventory.Shipped(id))
	require.Equal(t, 10, s.inventory.Stock("book"))
	require.Equal(t, 5, s.inventory.Stock("lamp"))
	require.Zero(t, s.payments.Charged(id))
	require.EqualValues(t, 100_00, s.payments.Balance("alice"))
}

// Every recorded history of an order (testdata/histories, recorded by
// this package's tests with JOBGATE_RECORD_HISTORIES=1) replays on
// today's code: a change that is not deterministic for orders already
// running fails here, and needs workflow.GetVersion. Record new histories
// when a change is meant to be versioned, and keep the old files.
func TestReplayHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*--*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded histories")
	kinds, err := job.NewRegistry(saga.Kind(&saga.Activities{}))
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.Open(f)
			require.NoError(t, err)
			defer data.Close()
			history, err := client.HistoryFromJSON(data, client.HistoryJSONOptions{})
			require.NoError(t, err)
			id := strings.TrimSuffix(strings.SplitN(filepath.Base(f), "--", 2)[1], ".json")
			require.NoError(t, replayOn(kinds, history, id))
		})
	}
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
