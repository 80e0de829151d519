package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// What a careful client reads: a malformed job id's 404 says ids are
// UUIDs; a submission without a kind does not name an empty kind; a
// canceling job is polled again in a second, not a minute; /v1/kinds
// publishes the maxAttempts default batch.http uses (3), not
// http.request's (5).
func TestClientFacingDetails(t *testing.T) {
	t.Parallel()
	e := mustStartEnv(t, envOptions{noWorker: true})

	p := requireProblem(t, e.do(http.MethodGet, "/v1/jobs/order-42", ""), http.StatusNotFound, "not-found")
	require.Contains(t, p["detail"], "UUID")
	p = requireProblem(t, e.do(http.MethodGet, "/v1/jobs/3f1c2a9e-5b7d-4c1e-9a2f-6d8b0e4c7a15", ""), http.StatusNotFound, "not-found")
	require.NotContains(t, p["detail"], "UUID", "a well-formed unknown id is just unknown")

	p = requireProblem(t, e.do(http.MethodPost, "/v1/jobs", `{"input":{"seconds":1}}`), http.StatusUnprocessableEntity, "invalid-input")
	require.NotContains(t, p["detail"], `kind ""`)

	// No worker: the cancel is requested and the job stays canceling.
	id, _ := e.submit(`{"kind":"sleep","input":{"seconds":60}}`)
	canceling := e.do(http.MethodDelete, "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusAccepted, canceling.StatusCode, "body: %s", canceling.Body)
	require.Equal(t, "canceling", canceling.JSON(t)["state"])
	require.Equal(t, "1", canceling.Header.Get("Retry-After"))
	status := e.do(http.MethodGet, "/v1/jobs/"+id+"?redirect=false", "")
	require.Equal(t, "canceling", status.JSON(t)["state"])
	require.Equal(t, "1", status.Header.Get("Retry-After"))

	var kinds struct {
		Kinds []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"inputSchema"`
		} `json:"kinds"`
	}
	resp := e.do(http.MethodGet, "/v1/kinds", "")
	require.NoError(t, json.Unmarshal(resp.Body, &kinds), "body: %s", resp.Body)
	defaults := map[string]float64{}
	for _, k := range kinds.Kinds {
		var schema struct {
			Properties map[string]struct {
				Default    any `json:"default"`
				Properties map[string]struct {
					Default any `json:"default"`
				} `json:"properties"`
				Items struct {
					Properties map[string]struct {
						Default any `json:"default"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(k.InputSchema, &schema), k.Name)
		switch k.Name {
		case "http.request":
			defaults[k.Name], _ = schema.Properties["maxAttempts"].Default.(float64)
		case "batch.http":
			defaults[k.Name], _ = schema.Properties["requests"].Items.Properties["maxAttempts"].Default.(float64)
		}
	}
	require.Equal(t, map[string]float64{"http.request": 5, "batch.http": 3}, defaults)
}
