package engine

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobgate/jobgate/job"
)

var literal = regexp.MustCompile(`'[^']*'`)

// FuzzListQuery checks that nothing a client puts in the listing's filters
// can change the shape of the visibility query.
func FuzzListQuery(f *testing.F) {
	for _, s := range [][2]string{{"sleep", "running"}, {"", ""}, {"x' OR '1'='1", "queued"}, {"a", "succeeded' OR 1=1 --"}, {"http.request", "canceled"}, {"k\x00", "failed"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, kind, state string) {
		q, err := listQuery("tenant-1", job.ListFilter{Kind: kind, State: job.State(state)}, time.Now())
		if err != nil {
			return
		}
		if kind != "" && !plainWord(kind) {
			t.Fatalf("accepted kind %q", kind)
		}
		// With every quoted literal blanked out, only the query's fixed
		// structure may remain: the input can fill literals, nothing else.
		skeleton := literal.ReplaceAllString(q, "?")
		if strings.ContainsAny(skeleton, "';-") || strings.Count(q, "'")%2 != 0 {
			t.Fatalf("query shape changed by %q/%q: %s", kind, state, q)
		}
		if !strings.HasPrefix(q, "JobTenant = 'tenant-1' AND JobKind IS NOT NULL") {
			t.Fatalf("tenant scope lost: %s", q)
		}
	})
}
