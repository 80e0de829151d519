package blob

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gblob "gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// A tenant's usage is kept in the bucket itself, so that every process of
// a deployment (APIs and workers sharing the storage) sees the same: each
// blob written for a tenant has an empty marker blob beside it,
// usage/<tenant>/<key>.<size>, and a tenant's usage is the sum of its
// markers' sizes, read with one listing. Deleting the blob deletes its
// marker (the blob's metadata names its tenant). A process that dies
// between writing a blob and its marker leaves the blob uncounted, never
// counted twice.
const usagePrefix = "usage/"

// usageTTL is how long a listed usage serves a process; its own writes and
// deletes update it at once.
const usageTTL = 2 * time.Second

// QuotaError is returned when a write would take a tenant's blobs past its
// quota, and by CheckQuota when the tenant is at or over it.
type QuotaError struct {
	Tenant      string
	Used, Limit int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("tenant %q's blob storage quota of %d bytes is used up (%d bytes: results, exports, checkpoints); "+
		"space comes back as results expire (JOBGATE_RESULT_TTL)", e.Tenant, e.Limit, e.Used)
}

// ErrQuotaExceeded matches every *QuotaError with errors.Is.
var ErrQuotaExceeded = errors.New("blob storage quota exceeded")

// Is makes errors.Is(err, ErrQuotaExceeded) hold.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// usage is a process's view of tenants' usage.
type usage struct {
	quota func(tenant string) int64

	mu      sync.Mutex
	tenants map[string]*tenantUsage
}

type tenantUsage struct {
	bytes int64
	at    time.Time
}

// LimitTenants sets each tenant's quota in bytes: blobs written for a
// tenant (Attrs.Tenant) whose usage is at its quota are refused, and a
// write that would pass it fails (*QuotaError); 0 is no quota. Call it
// before the store is used.
func (s *Store) LimitTenants(quota func(tenant string) int64) { s.usage.quota = quota }

// Quota is the tenant's quota in bytes; 0 is none.
func (s *Store) Quota(tenant string) int64 {
	if s.usage.quota == nil || tenant == "" {
		return 0
	}
	return s.usage.quota(tenant)
}

// Usage is the bytes of blobs stored for tenant, as listed at most
// usageTTL ago plus this process's writes and deletes since.
func (s *Store) Usage(ctx context.Context, tenant string) (int64, error) {
	s.usage.mu.Lock()
	if u, ok := s.usage.tenants[tenant]; ok && time.Since(u.at) < usageTTL {
		defer s.usage.mu.Unlock()
		return u.bytes, nil
	}
	s.usage.mu.Unlock()
	objs, err := s.Objects(ctx, usageDir(tenant))
	if err != nil {
		return 0, fmt.Errorf("read the blob storage usage of tenant %q: %w", tenant, err)
	}
	var n int64
	for _, o := range objs {
		if size, ok := markerSize(o.Key); ok {
			n += size
		}
	}
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if s.usage.tenants == nil {
		s.usage.tenants = map[string]*tenantUsage{}
	}
	s.usage.tenants[tenant] = &tenantUsage{bytes: n, at: time.Now()}
	return n, nil
}

// CheckQuota returns a *QuotaError when tenant's usage is at or over its
// quota, and nil when it is under, has no quota, or its usage cannot be
// read (the write that follows finds out).
func (s *Store) CheckQuota(ctx context.Context, tenant string) error {
	_, err := s.allowance(ctx, tenant, 0)
	var q *QuotaError
	if errors.As(err, &q) {
		return err
	}
	return nil
}

// allowance is how many bytes tenant may still write, once freed bytes of
// its are replaced: -1 for no quota.
func (s *Store) allowance(ctx context.Context, tenant string, freed int64) (int64, error) {
	limit := s.Quota(tenant)
	if limit <= 0 {
		return -1, nil
	}
	used, err := s.Usage(ctx, tenant)
	if err != nil {
		return 0, err
	}
	used = max(0, used-freed)
	if used >= limit {
		return 0, &QuotaError{Tenant: tenant, Used: used, Limit: limit}
	}
	return limit - used, nil
}

func (s *Store) adjust(tenant string, delta int64) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	if u, ok := s.usage.tenants[tenant]; ok {
		u.bytes = max(0, u.bytes+delta)
	}
}

func usageDir(tenant string) string { return usagePrefix + url.PathEscape(tenant) + "/" }

func markerKey(tenant, key string, size int64) string {
	return usageDir(tenant) + url.PathEscape(key) + "." + strconv.FormatInt(size, 10)
}

func markerSize(key string) (int64, bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(key[i+1:], 10, 64)
	return n, err == nil && n >= 0
}

// owner is the tenant and size of the blob under key, as its metadata
// says; tenant is "" for a blob written for no tenant, or none.
func (s *Store) owner(ctx context.Context, key string) (tenant string, size int64, err error) {
	attrs, err := s.bucket.Attributes(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read blob %s: %w", key, err)
	}
	return attrs.Metadata[tenantMetadata], attrs.Size, nil
}

const tenantMetadata = "tenant"

// mark records a blob of size written for tenant under key, replacing the
// marker of the blob it replaced (oldTenant, oldSize; oldTenant "" for
// none).
func (s *Store) mark(ctx context.Context, tenant, key string, size int64, oldTenant string, oldSize int64) error {
	if err := s.bucket.WriteAll(ctx, markerKey(tenant, key, size), nil, &gblob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		return fmt.Errorf("record the size of blob %s: %w", key, err)
	}
	s.adjust(tenant, size)
	if oldTenant != "" && (oldTenant != tenant || oldSize != size) {
		s.unmark(ctx, oldTenant, key, oldSize)
	}
	return nil
}

func (s *Store) unmark(ctx context.Context, tenant, key string, size int64) {
	err := s.bucket.Delete(ctx, markerKey(tenant, key, size))
	if err == nil {
		s.adjust(tenant, -size)
	}
}
