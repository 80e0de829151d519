package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one tenant may do.
type Limits struct {
	// Rate is the requests per second a tenant may make to /v1/ on
	// average; 0 means unlimited.
	Rate float64
	// Burst is how many requests may come at once (default twice Rate, at
	// least 1).
	Burst int
	// MaxActive caps a tenant's queued and running jobs; 0 means no cap.
	MaxActive int
	// Weight is the tenant's share of worker slots under fair dispatch,
	// relative to other tenants' (Temporal's fairness weight, clamped to
	// 0.001–1000); 0 means 1.
	Weight float64
	// MaxStreams caps a tenant's requests held open at once: event
	// streams and long-polls (429 beyond), and waiting submissions (which
	// answer 202 at once instead); 0 means no cap.
	MaxStreams int
	// BlobBytes is the tenant's blob storage quota: the bytes its results,
	// exports and checkpoints may hold; 0 means none. Submissions get 429
	// while it is used up, and a job's write that would pass it fails.
	BlobBytes int64
}

// ParseTenantLimits reads JOBGATE_TENANT_LIMITS entries, each
// "tenant:rate=R:burst=B:active=N:weight=W:streams=S:blobs=BYTES" with any
// of the settings; unset ones take def's.
func ParseTenantLimits(entries []string, def Limits) (map[string]Limits, error) {
	out := map[string]Limits{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		parts := strings.Split(e, ":")
		if !validTenant(parts[0]) {
			return nil, fmt.Errorf("tenant limits %q: want tenant:rate=R:burst=B:active=N:weight=W:streams=S", e)
		}
		l := def
		for _, kv := range parts[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "rate":
				l.Rate, err = strconv.ParseFloat(v, 64)
				if err == nil && (l.Rate < 0 || math.IsInf(l.Rate, 0) || math.IsNaN(l.Rate)) {
					err = fmt.Errorf("negative")
				}
			case "burst":
				l.Burst, err = strconv.Atoi(v)
			case "active":
				l.MaxActive, err = strconv.Atoi(v)
			case "streams":
				l.MaxStreams, err = strconv.Atoi(v)
				if err == nil && l.MaxStreams < 0 {
					err = fmt.Errorf("negative")
				}
			case "blobs":
				l.BlobBytes, err = strconv.ParseInt(v, 10, 64)
				if err == nil && l.BlobBytes < 0 {
					err = fmt.Errorf("negative")
				}
			case "weight":
				l.Weight, err = strconv.ParseFloat(v, 64)
				if err == nil && !(l.Weight >= 0.001 && l.Weight <= 1000) {
					err = fmt.Errorf("out of range 0.001 to 1000")
				}
			default:
				err = fmt.Errorf("unknown setting %q", k)
			}
			if err != nil {
				return nil, fmt.Errorf("tenant limits %q: %s: %v (want rate=R, burst=B, active=N, weight=W, streams=S or blobs=BYTES)", e, kv, err)
			}
		}
		out[parts[0]] = l
	}
	return out, nil
}

func (l Limits) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(2*l.Rate)))
}

// limiter is a token bucket per tenant.
type limiter struct {
	def     Limits
	per     map[string]Limits
	now     func() time.Time
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLimiter(def Limits, per map[string]Limits, now func() time.Time) *limiter {
	return &limiter{def: def, per: per, now: now, buckets: map[string]*rate.Limiter{}}
}

func (l *limiter) limits(tenant string) Limits {
	if lim, ok := l.per[tenant]; ok {
		return lim
	}
	return l.def
}

// allow takes a token from the tenant's bucket and sets the RateLimit and
// RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-headers); it
// returns a 429 problem when the bucket is empty.
func (l *limiter) allow(w http.ResponseWriter, tenant string) error {
	lim := l.limits(tenant)
	if lim.Rate <= 0 {
		return nil
	}
	l.mu.Lock()
	b, ok := l.buckets[tenant]
	if !ok {
		b = rate.NewLimiter(rate.Limit(lim.Rate), lim.burst())
		l.buckets[tenant] = b
	}
	l.mu.Unlock()

	now := l.now()
	allowed := b.AllowN(now, 1)
	tokens := b.TokensAt(now)
	wait := 0
	if tokens < 1 {
		wait = int(math.Ceil((1 - tokens) / lim.Rate))
	}
	window := int(math.Ceil(float64(lim.burst()) / lim.Rate))
	w.Header().Set("RateLimit-Policy", fmt.Sprintf(`"tenant";q=%d;w=%d`, lim.burst(), window))
	w.Header().Set("RateLimit", fmt.Sprintf(`"tenant";r=%d;t=%d`, int(max(0, math.Floor(tokens))), wait))
	if allowed {
		return nil
	}
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		fmt.Sprintf("Your tenant may make %g requests per second (bursts of %d); retry after the indicated delay.", lim.Rate, lim.burst()))
	p.retryAfter = max(1, wait)
	return p
}
