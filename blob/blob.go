// Package blob is jobgate's blob storage: large job results, exports and
// kinds' scratch data (batch.http's checkpoints) live here, so that
// workflow histories carry only a pointer. It wraps gocloud.dev/blob: a
// local directory (file://) works out of the box, and a binary that imports
// a gocloud.dev driver (gocloud.dev/blob/s3blob, gcsblob, azureblob) opens
// that driver's URLs unchanged.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"

	gblob "gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/gcerrors"
)

// ErrNotFound means there is no blob under the key.
var ErrNotFound = errors.New("blob not found")

// Store is a bucket of blobs. It is safe for concurrent use.
type Store struct {
	bucket *gblob.Bucket
	url    string
	file   bool // a file:// bucket, whose writes in progress are listed
	usage  usage
}

// Open opens the bucket at rawURL: file:///abs/dir (created if missing),
// or any URL of a gocloud.dev driver the binary registered, such as
// s3://bucket?region=eu-west-1 or gs://bucket. It fails when the URL's
// scheme has no driver or the bucket cannot be reached.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("blob URL %q is not a URL such as file:///var/lib/jobgate/blobs or s3://bucket", rawURL)
	}
	var b *gblob.Bucket
	if u.Scheme == fileblob.Scheme {
		// Temporary files next to the final ones: the directory may be on
		// another mount than os.TempDir, where a rename would fail.
		opener := &fileblob.URLOpener{Options: fileblob.Options{CreateDir: true, NoTempDir: true, DirFileMode: 0o750}}
		b, err = opener.OpenBucketURL(ctx, u)
	} else {
		b, err = gblob.OpenBucket(ctx, rawURL)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob storage %s: %w (file:// works everywhere; s3://, gs:// and azblob:// need their gocloud.dev driver linked in)", redact(u), err)
	}
	ok, err := b.IsAccessible(ctx)
	if err != nil || !ok {
		_ = b.Close()
		return nil, fmt.Errorf("blob storage %s is not accessible: %v", redact(u), err)
	}
	return &Store{bucket: b, url: redact(u), file: u.Scheme == fileblob.Scheme}, nil
}

// String names the store for logs, without credentials.
func (s *Store) String() string { return s.url }

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Attrs describe a blob when it is written.
type Attrs struct {
	// ContentType is the blob's media type ("text/csv").
	ContentType string
	// Filename, when set, is the name a download suggests.
	Filename string
	// Tenant, when set, is whose blob it is: it counts toward the
	// tenant's usage (and quota, LimitTenants) until it is deleted.
	Tenant string
}

// Writer writes one blob. Nothing is visible under its key until Close
// returns without error; Abort discards what was written.
type Writer struct {
	w      *gblob.Writer
	cancel context.CancelFunc
	ctx    context.Context
	store  *Store
	key    string
	tenant string
	// allowance is the bytes the tenant may still write (-1: no quota).
	allowance int64
	n         int64
	// oldTenant and oldSize describe the blob this one replaces.
	oldTenant string
	oldSize   int64
}

// Create starts writing a blob under key, replacing any blob there once
// the Writer is closed. A blob for a tenant at its quota is refused, and
// a write that would take it past its quota fails (*QuotaError).
func (s *Store) Create(ctx context.Context, key string, a Attrs) (*Writer, error) {
	allowance := int64(-1)
	var oldTenant string
	var oldSize int64
	if a.Tenant != "" {
		var err error
		if oldTenant, oldSize, err = s.owner(ctx, key); err != nil {
			return nil, err
		}
		freed := int64(0)
		if oldTenant == a.Tenant {
			freed = oldSize // replaced by this blob
		}
		if allowance, err = s.allowance(ctx, a.Tenant, freed); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	opts := &gblob.WriterOptions{ContentType: a.ContentType, DisableContentTypeDetection: a.ContentType != "", Metadata: map[string]string{}}
	if a.Filename != "" {
		opts.Metadata["filename"] = a.Filename
	}
	if a.Tenant != "" {
		opts.Metadata[tenantMetadata] = a.Tenant
	}
	w, err := s.bucket.NewWriter(ctx, key, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("write blob %s: %w", key, err)
	}
	return &Writer{w: w, cancel: cancel, ctx: ctx, store: s, key: key, tenant: a.Tenant, allowance: allowance, oldTenant: oldTenant, oldSize: oldSize}, nil
}

// Write implements io.Writer. Past the tenant's quota it fails with a
// *QuotaError; Abort the Writer then.
func (w *Writer) Write(p []byte) (int, error) {
	if w.allowance >= 0 && w.n+int64(len(p)) > w.allowance {
		limit := w.store.Quota(w.tenant)
		return 0, &QuotaError{Tenant: w.tenant, Used: limit - w.allowance + w.n + int64(len(p)), Limit: limit}
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// Close commits the blob, and counts it toward its tenant's usage.
func (w *Writer) Close() error {
	defer w.cancel()
	if err := w.w.Close(); err != nil {
		return err
	}
	if w.tenant == "" {
		return nil
	}
	return w.store.mark(w.ctx, w.tenant, w.key, w.n, w.oldTenant, w.oldSize)
}

// Abort discards the blob being written.
func (w *Writer) Abort() {
	w.cancel()
	_ = w.w.Close()
}

// Put writes data as the blob under key.
func (s *Store) Put(ctx context.Context, key string, data []byte, a Attrs) error {
	w, err := s.Create(ctx, key, a)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("write blob %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write blob %s: %w", key, err)
	}
	return nil
}

// Reader reads one blob; it can seek, so it serves range requests.
type Reader struct {
	*gblob.Reader
	// Filename is the name the blob was written with, if any.
	Filename string
}

// ModTime is when the blob was written.
func (r *Reader) ModTime() time.Time { return r.Reader.ModTime() }

// Open opens the blob under key for reading. Errors: ErrNotFound.
func (s *Store) Open(ctx context.Context, key string) (*Reader, error) {
	attrs, err := s.bucket.Attributes(ctx, key)
	if err != nil {
		return nil, s.wrap("read blob", key, err)
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return nil, s.wrap("read blob", key, err)
	}
	return &Reader{Reader: r, Filename: attrs.Metadata["filename"]}, nil
}

// Get reads the whole blob under key. Errors: ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := s.bucket.ReadAll(ctx, key)
	if err != nil {
		return nil, s.wrap("read blob", key, err)
	}
	return data, nil
}

// Delete deletes the blob under key, and its count in its tenant's usage;
// a missing blob is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	tenant, size, err := s.owner(ctx, key)
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	err = s.bucket.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	if tenant != "" {
		s.unmark(ctx, tenant, key, size)
	}
	return nil
}

// List returns the keys under prefix, in lexical order.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	objs, err := s.Objects(ctx, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys, nil
}

// Object is a stored blob as a listing shows it.
type Object struct {
	Key  string
	Size int64
}

// Objects returns the blobs under prefix with their sizes, in lexical
// order of their keys.
//
// On a file bucket a blob deleted while it is listed can fail the listing
// with NotFound (the directory is read, then each file's size): the
// listing is read again after a short pause, up to listAttempts times in
// all, so that a burst of deletes (results expiring together) passes.
// Files of writes in progress are not blobs yet and are left out.
func (s *Store) Objects(ctx context.Context, prefix string) ([]Object, error) {
	pause := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		objs, err := s.objects(ctx, prefix)
		if err == nil || gcerrors.Code(err) != gcerrors.NotFound || attempt == listAttempts {
			return objs, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

const listAttempts = 10

// tempFile matches the name fileblob gives a write in progress when its
// temporary files are kept beside the blobs: <key>.<hex nanoseconds>.tmp.
var tempFile = regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)

func (s *Store) objects(ctx context.Context, prefix string) ([]Object, error) {
	var objs []Object
	it := s.bucket.List(&gblob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list blobs under %s: %w", prefix, err)
		}
		if !obj.IsDir && !(s.file && tempFile.MatchString(obj.Key)) {
			objs = append(objs, Object{Key: obj.Key, Size: obj.Size})
		}
	}
}

// DeletePrefix deletes every blob under prefix.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) error {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// Exists reports whether a blob is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.bucket.Exists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", key, err)
	}
	return ok, nil
}

func (s *Store) wrap(op, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// redact is u without user info or query, fit for logs.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return strings.TrimSuffix(c.String(), "?")
}
