package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
	"github.com/jobgate/jobgate/workflows"
)

// resultPrefix is where a job's result is kept in blob storage.
func resultPrefix(jobID string) string { return "results/" + jobID + "/" }

// resultDir is the job's result prefix of a result key, or "".
func resultDir(key string) string {
	if !strings.HasPrefix(key, "results/") {
		return ""
	}
	dir, _ := path.Split(key)
	return dir
}

// store turns what Run returned into the activity's output: JSON up to the
// threshold inline, larger JSON and files in blob storage.
func (w *Worker) store(ctx context.Context, info job.Info, result any) (workflows.Output, error) {
	if f, ok := result.(*job.File); ok {
		if f == nil || f.Write == nil {
			return workflows.Output{}, errorf("invalid-result", "kind %s returned a *job.File without a Write function", info.Kind)
		}
		return w.storeFile(ctx, info, f)
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return workflows.Output{}, errorf("invalid-result", "kind %s returned a result that is not JSON: %v", info.Kind, err)
	}
	if w.Blobs == nil || int64(len(raw)) <= w.ResultBlobThreshold {
		return workflows.Output{Result: raw}, nil
	}
	return w.storeFile(ctx, info, &job.File{ContentType: "application/json", Write: func(_ context.Context, out io.Writer) error {
		_, err := out.Write(raw)
		return err
	}})
}

// storeFile streams a file result: a JSON file that stays under the
// threshold is kept inline, anything else is written to blob storage while
// its digest and size are counted.
func (w *Worker) storeFile(ctx context.Context, info job.Info, f *job.File) (workflows.Output, error) {
	contentType := f.ContentType
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	name := safeName(f.Name)
	key := resultPrefix(info.ID) + name
	if name == "" {
		key = resultPrefix(info.ID) + "result" + extension(contentType)
	}
	sp := &spool{ctx: ctx, store: w.Blobs, key: key, attrs: blob.Attrs{ContentType: contentType, Filename: name, Tenant: info.Tenant}, limit: -1}
	if isJSON(contentType) {
		sp.limit = w.ResultBlobThreshold
	}
	digest := sha256.New()
	if err := f.Write(ctx, io.MultiWriter(digest, sp)); err != nil {
		sp.abort()
		return workflows.Output{}, quotaFailure(err)
	}
	if sp.w == nil && sp.limit >= 0 && json.Valid(sp.buf.Bytes()) {
		return workflows.Output{Result: json.RawMessage(sp.buf.Bytes())}, nil
	}
	if err := sp.spill(); err != nil {
		return workflows.Output{}, quotaFailure(err)
	}
	if err := sp.w.Close(); err != nil {
		return workflows.Output{}, fmt.Errorf("store the result of job %s: %w", info.ID, err)
	}
	return workflows.Output{Blob: &workflows.BlobRef{
		Key:         key,
		Size:        sp.n,
		ContentType: contentType,
		Filename:    name,
		SHA256:      hex.EncodeToString(digest.Sum(nil)),
	}}, nil
}

// quotaFailure makes a write refused by the tenant's blob storage quota
// the job's permanent failure, blob-quota-exceeded: retrying would not
// make room. Other errors are returned as they are.
func quotaFailure(err error) error {
	var q *blob.QuotaError
	if errors.As(err, &q) {
		return job.Permanent("blob-quota-exceeded", q)
	}
	return err
}

// spool holds what is written in memory up to limit (never, when limit is
// negative), then moves it to a blob and streams the rest there.
type spool struct {
	ctx   context.Context
	store *blob.Store
	key   string
	attrs blob.Attrs
	limit int64

	buf bytes.Buffer
	w   *blob.Writer
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.w == nil && s.limit >= 0 && int64(s.buf.Len()+len(p)) <= s.limit {
		return s.buf.Write(p)
	}
	if err := s.spill(); err != nil {
		return 0, err
	}
	return s.w.Write(p)
}

// spill opens the blob, if not yet, and moves the buffer there.
func (s *spool) spill() error {
	if s.w != nil {
		return nil
	}
	if s.store == nil {
		return errorf("no-blob-storage", "the result is a file or larger than the inline limit, and this worker has no blob storage (set JOBGATE_BLOB_URL)")
	}
	w, err := s.store.Create(s.ctx, s.key, s.attrs)
	if err != nil {
		return err
	}
	s.w = w
	if s.buf.Len() > 0 {
		if _, err := w.Write(s.buf.Bytes()); err != nil {
			return err
		}
		s.buf.Reset()
	}
	return nil
}

func (s *spool) abort() {
	if s.w != nil {
		s.w.Abort()
	}
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func extension(contentType string) string {
	if isJSON(contentType) {
		return ".json"
	}
	return ""
}

// safeName keeps a file name usable as a blob key and a download name:
// no directories, no control characters.
func safeName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	if name == "." || name == "/" || name == ".." {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '_'
		}
		return r
	}, name)
}
