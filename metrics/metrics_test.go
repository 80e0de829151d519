package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/metrics"
)

// A kind's name reads the same in the metrics jobgate counts itself and in
// those counted through the Temporal SDK (tally), where label values are
// not rewritten: kind="http.request", not kind="http_request".
func TestKindLabelsAreTheKindsNames(t *testing.T) {
	m := metrics.New()
	t.Cleanup(func() { _ = m.Close() })
	m.JobAccepted("http.request", time.Millisecond)
	m.Temporal().WithTags(map[string]string{"kind": "http.request", "state": "succeeded"}).Counter("jobgate_jobs_finished").Inc(1)

	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	finished := regexp.MustCompile(`(?m)^jobgate_jobs_finished\{.*$`)
	require.Contains(t, scrape(), `jobgate_jobs_accepted_total{kind="http.request"} 1`)
	// tally reports to the registry once a second.
	var line string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if line = finished.FindString(scrape()); strings.HasSuffix(line, " 1") {
			break
		}
	}
	require.Equal(t, `jobgate_jobs_finished{kind="http.request",state="succeeded"} 1`, line)
}
