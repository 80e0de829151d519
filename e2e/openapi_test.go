package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/activities"
	"github.com/jobgate/jobgate/engine"
	"github.com/jobgate/jobgate/flow"
	"github.com/jobgate/jobgate/httpapi"
	"github.com/jobgate/jobgate/job"
)

// openAPI is httpapi.OpenAPI loaded, validated and routed, once per test
// binary.
var openAPI = sync.OnceValues(func() (*openAPISpec, error) {
	doc, err := loadOpenAPI(httpapi.OpenAPI)
	if err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route httpapi/openapi.json: %w", err)
	}
	return &openAPISpec{doc: doc, router: router}, nil
})

// loadOpenAPI parses an OpenAPI 3.1 document and validates it.
func loadOpenAPI(data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load httpapi/openapi.json: %w", err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("httpapi/openapi.json declares openapi %q; the contract is OpenAPI 3.1.0", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("httpapi/openapi.json is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// openAPISpec checks HTTP exchanges against the OpenAPI document.
type openAPISpec struct {
	doc    *openapi3.T
	router routers.Router
}

// conformTo wraps next (nil: http.DefaultTransport) so that every exchange
// through it is checked against httpapi/openapi.json; a mismatch fails tb
// with the method, path, status and what does not conform.
func conformTo(tb testing.TB, next http.RoundTripper) http.RoundTripper {
	tb.Helper()
	spec, err := openAPI()
	require.NoError(tb, err)
	if next == nil {
		next = http.DefaultTransport
	}
	return &conformance{tb: tb, next: next, spec: spec}
}

// conformance is an http.RoundTripper that holds the API to its OpenAPI
// document: requests that the server accepted (2xx, 3xx) must match their
// operation (requests the server refused may be deliberately wrong), and
// every response must: a documented status, the documented required
// headers with valid values, and a body of the documented content type and
// schema. Event streams are checked up to their content type; their body is
// left to the caller to read.
type conformance struct {
	tb   testing.TB
	next http.RoundTripper
	spec *openAPISpec
}

func (c *conformance) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var body []byte
	stream := mediaType(resp.Header) == "text/event-stream"
	if !stream {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	if err := c.spec.check(req, reqBody, resp, body, stream); err != nil {
		c.tb.Errorf("openapi: %s %s answered %d, which does not conform to httpapi/openapi.json: %v",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
	return resp, nil
}

// check holds one exchange to the document; a stream's body is not read.
func (s *openAPISpec) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte, stream bool) error {
	route, params, err := s.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		route = s.genericRoute(req, http.StatusNotFound, "NoSuchEndpoint")
	case errors.Is(err, routers.ErrMethodNotAllowed):
		route = s.genericRoute(req, http.StatusMethodNotAllowed, "MethodNotAllowed")
	case err != nil:
		return fmt.Errorf("find its operation: %w", err)
	}
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request:    withBody(req, reqBody),
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	in.Options.WithCustomSchemaErrorFunc(schemaErrorMessage)
	var errs []error
	if resp.StatusCode < 400 && route.Operation.OperationID != "" {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}

	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return errors.Join(append(errs, fmt.Errorf("status %d is not documented for %s %s", resp.StatusCode, route.Method, route.Path))...)
	}
	// The validator skips 304 and HEAD answers, and cannot read a stream:
	// check their headers and content type here.
	if resp.StatusCode == http.StatusNotModified || req.Method == http.MethodHead || stream {
		if err := checkHeaders(ref.Value, resp.Header); err != nil {
			errs = append(errs, err)
		}
		if req.Method != http.MethodHead {
			if err := checkContentType(ref.Value, resp.Header); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.Options.WithCustomSchemaErrorFunc(schemaErrorMessage)
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response: %w", err))
	}
	if len(ref.Value.Content) == 0 && len(body) > 0 {
		errs = append(errs, fmt.Errorf("response: a %d has no documented body, got %q", resp.StatusCode, body))
	}
	return errors.Join(errs...)
}

// genericRoute is a stand-in operation for answers any path or method may
// get: 404 for an unknown path, 405 for an unknown method, and under /v1/
// the authentication and rate-limit answers that come before routing.
func (s *openAPISpec) genericRoute(req *http.Request, status int, response string) *routers.Route {
	responses := openapi3.NewResponses(openapi3.WithStatus(status, s.doc.Components.Responses[response]))
	if strings.HasPrefix(req.URL.Path, "/v1/") {
		responses.Set("401", s.doc.Components.Responses["Unauthorized"])
		responses.Set("429", s.doc.Components.Responses["TooManyRequests"])
	}
	return &routers.Route{
		Spec:      s.doc,
		Path:      req.URL.Path,
		Method:    req.Method,
		Operation: &openapi3.Operation{Responses: responses},
	}
}

// schemaErrorMessage says where a value breaks its schema and how, without
// dumping the schema.
func schemaErrorMessage(err *openapi3.SchemaError) string {
	return "at /" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

// withBody is a copy of req whose body reads body.
func withBody(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return r
}

// checkHeaders checks that the response has the headers the document
// requires and that every documented header present has a valid value.
func checkHeaders(resp *openapi3.Response, h http.Header) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(resp.Headers)) {
		doc := resp.Headers[name].Value
		v := h.Get(name)
		if v == "" {
			if doc.Required {
				errs = append(errs, fmt.Errorf("response header %q missing", name))
			}
			continue
		}
		if doc.Schema == nil || doc.Schema.Value == nil {
			continue
		}
		var value any = v
		if doc.Schema.Value.Type.Is(openapi3.TypeInteger) {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("response header %q is %q, not an integer", name, v))
				continue
			}
			value = n
		}
		if err := doc.Schema.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.SetSchemaErrorMessageCustomizer(schemaErrorMessage)); err != nil {
			errs = append(errs, fmt.Errorf("response header %q doesn't match schema: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// checkContentType checks that the response's media type is one the
// document gives for it (or none, when it documents no body).
func checkContentType(resp *openapi3.Response, h http.Header) error {
	mt := mediaType(h)
	if len(resp.Content) == 0 {
		if mt != "" {
			return fmt.Errorf("response has Content-Type %q where no body is documented", mt)
		}
		return nil
	}
	if resp.Content.Get(mt) == nil {
		return fmt.Errorf("response Content-Type %q is not documented (%s)", mt, strings.Join(slices.Sorted(maps.Keys(resp.Content)), ", "))
	}
	return nil
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// The server serves its own contract, byte for byte, and it is a valid
// OpenAPI 3.1 document.
func TestOpenAPIServedAndValid(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})
	resp := e.do(http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Equal(t, string(httpapi.OpenAPI), string(resp.Body), "GET /openapi.json serves httpapi.OpenAPI")
	doc, err := loadOpenAPI(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "3.1.0", doc.OpenAPI)

	head := e.do(http.MethodHead, "/openapi.json", "")
	require.Equal(t, http.StatusOK, head.StatusCode)
	require.Empty(t, head.Body)
	require.Equal(t, strconv.Itoa(len(httpapi.OpenAPI)), head.Header.Get("Content-Length"))
}

// Every route the server registers is documented, every documented
// operation is a route, and every operation has an id and a summary.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	spec, err := openAPI()
	require.NoError(t, err)
	kinds, err := job.NewRegistry(append(activities.Builtin(activities.Deps{}), flow.Builtin()...)...)
	require.NoError(t, err)
	api := httpapi.New(engine.New(nil, kinds, engine.Config{}), kinds, httpapi.Config{}, slog.New(slog.DiscardHandler))
	routes, err := api.Routes()
	require.NoError(t, err)

	served := map[string]bool{}
	for _, r := range routes {
		served[r.Method+" "+r.Path] = true
	}
	documented := map[string]bool{}
	ids := map[string]string{}
	for path, item := range spec.doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			documented[key] = true
			require.NotEmpty(t, op.OperationID, "%s has no operationId", key)
			require.NotEmpty(t, op.Summary, "%s has no summary", key)
			require.NotContains(t, ids, op.OperationID, "operationId %s is used by %s and %s", op.OperationID, ids[op.OperationID], key)
			ids[op.OperationID] = key
		}
	}
	for r := range served {
		require.True(t, documented[r], "route %s is not in httpapi/openapi.json", r)
	}
	for op := range documented {
		require.True(t, served[op], "httpapi/openapi.json documents %s, which routes.go does not serve", op)
	}
}

// The conformance check itself catches drift: a missing required header, a
// member the schema does not know, an undocumented status, a problem of the
// wrong media type; and it accepts what the contract says.
func TestOpenAPICatchesDrift(t *testing.T) {
	t.Parallel()
	spec, err := openAPI()
	require.NoError(t, err)
	const id = "7d9f0c6e-3f1a-4a8e-9b57-1f0e2a9c4d11"
	status := `{"id":"` + id + `","kind":"sleep","state":"queued","progress":null,"createdAt":"2026-11-21T21:37:47Z",` +
		`"startedAt":null,"updatedAt":"2026-11-21T21:37:47Z","completedAt":null,"attempt":1,` +
		`"estimatedCompletion":"2026-11-21T21:37:52Z","statusUrl":"/v1/jobs/` + id + `","resultUrl":null,"error":null,"callback":null,"priority":3}`
	accepted := http.Header{
		"Content-Type":  {"application/json"},
		"Location":      {"/v1/jobs/" + id},
		"Retry-After":   {"5"},
		"Etag":          {`W/"1"`},
		"Cache-Control": {"no-store"},
		"X-Request-Id":  {"abc"},
		// Azure's pollers' monitor (GET /v1/operations/{id}).
		"Operation-Location": {"http://localhost:8080/v1/operations/" + id},
	}
	without := func(h http.Header, name string) http.Header {
		h = h.Clone()
		h.Del(name)
		return h
	}
	with := func(h http.Header, name, value string) http.Header {
		h = h.Clone()
		h.Set(name, value)
		return h
	}
	problem := `{"type":"https://jobgate.dev/problems/not-found","title":"No such job","status":404,"detail":"none",` +
		`"instance":"/v1/jobs/` + id + `","requestId":"abc"}`
	problemHeader := http.Header{"Content-Type": {"application/problem+json"}, "Cache-Control": {"no-store"}, "X-Request-Id": {"abc"}}
	submit := `{"kind":"sleep","input":{"seconds":5}}`
	cases := []struct {
		name, method, path, reqBody string
		status                      int
		header                      http.Header
		body                        string
		wrong                       string
	}{
		{"202 as documented", "POST", "/v1/jobs", submit, 202, accepted, status, ""},
		{"202 without Location", "POST", "/v1/jobs", submit, 202, without(accepted, "Location"), status, `"Location" missing`},
		{"202 with a Retry-After of 0", "POST", "/v1/jobs", submit, 202, with(accepted, "Retry-After", "0"), status, `"Retry-After"`},
		{"status with an unknown member", "POST", "/v1/jobs", submit, 202, accepted, strings.TrimSuffix(status, "}") + `,"owner":"x"}`, "owner"},
		{"status without a member", "POST", "/v1/jobs", submit, 202, accepted, strings.Replace(status, `,"callback":null`, "", 1), "callback"},
		{"an unknown state", "POST", "/v1/jobs", submit, 202, accepted, strings.Replace(status, `"queued"`, `"done"`, 1), "state"},
		{"accepted request with an unknown member", "POST", "/v1/jobs", `{"kind":"sleep","extra":1}`, 202, accepted, status, "request"},
		{"undocumented status", "GET", "/v1/jobs/" + id, "", 418, problemHeader, problem, "418"},
		{"problem as application/json", "GET", "/v1/jobs/" + id, "", 404, with(problemHeader, "Content-Type", "application/json"), problem, "Content-Type"},
		{"problem of an unknown type", "GET", "/v1/jobs/" + id, "", 404, problemHeader, strings.Replace(problem, "not-found", "gone-fishing", 1), "type"},
		{"404 as documented", "GET", "/v1/jobs/" + id, "", 404, problemHeader, problem, ""},
		{"no-such-endpoint as documented", "GET", "/v2/jobs", "", 404, problemHeader, problem, ""},
		{"405 without Allow", "PUT", "/v1/jobs", "", 405, problemHeader, problem, `"Allow" missing`},
		{"304 without ETag", "GET", "/v1/jobs/" + id, "", 304, http.Header{"Cache-Control": {"no-store"}, "X-Request-Id": {"abc"}}, "", `"ETag" missing`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.reqBody))
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp := &http.Response{StatusCode: tc.status, Header: tc.header}
			err := spec.check(req, []byte(tc.reqBody), resp, []byte(tc.body), false)
			if tc.wrong == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wrong)
			t.Logf("caught: %v", err)
		})
	}
}
