package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
)

// A cursor is signed: one whose content was altered (its page token or its
// filters) is a 400 invalid-cursor at once, without a listing reaching
// Temporal; and a listing whose last page is exactly full gives no cursor
// to an empty page.
func TestCursorsAreSignedAndEndOnTheLastPage(t *testing.T) {
	t.Parallel()
	var lists atomic.Int64
	countLists := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method == workflowservice.WorkflowService_ListWorkflowExecutions_FullMethodName {
			lists.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	e := mustStartEnv(t, envOptions{noWorker: true, dialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(countLists)}})
	const n = 4
	for range n {
		e.submit(`{"kind":"sleep","input":{"seconds":60}}`)
	}
	eventually(t, 30*time.Second, "all jobs visible", func() bool {
		return e.countWorkflows(fmt.Sprintf("JobTenant = '%s'", e.Tenant)) == n
	})

	first := e.do(http.MethodGet, "/v1/jobs?limit=2", "").JSON(t)
	require.Len(t, first["jobs"], 2)
	cursor, _ := first["nextCursor"].(string)
	require.NotEmpty(t, cursor)
	last := e.do(http.MethodGet, "/v1/jobs?limit=2&cursor="+cursor, "").JSON(t)
	require.Len(t, last["jobs"], 2)
	require.Nil(t, last["nextCursor"], "the last page is full, and nothing follows it")

	body, sig, ok := strings.Cut(cursor, ".")
	require.True(t, ok, "a cursor carries its signature")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	require.NoError(t, err)
	tampered := []string{
		"garbage",
		body,           // no signature
		body + ".AAAA", // a wrong one
		base64.RawURLEncoding.EncodeToString(append([]byte{}, append(raw[:len(raw)-3:len(raw)-3], 'x', '"', '}')...)) + "." + sig,
		base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"t":"`, `"t":"AAAA`, 1))) + "." + sig,
	}
	before := lists.Load()
	for _, c := range tampered {
		start := time.Now()
		requireProblem(t, e.do(http.MethodGet, "/v1/jobs?limit=2&cursor="+c, ""), http.StatusBadRequest, "invalid-cursor")
		require.Less(t, time.Since(start), 2*time.Second, "a bad cursor is refused at once")
	}
	require.Equal(t, before, lists.Load(), "no bad cursor reached Temporal")
}
