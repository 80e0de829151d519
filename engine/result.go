package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
)

// OpenResult implements job.Service: a result in the workflow's history is
// served from memory, a larger one or a file from blob storage.
func (s *Service) OpenResult(ctx context.Context, tenant, id string) (*job.ResultStream, *job.Job, error) {
	v, err := s.load(ctx, tenant, id)
	if err != nil {
		return nil, nil, err
	}
	j := v.job
	if j.State != job.StateSucceeded {
		return nil, j, &job.NotFinishedError{Job: j}
	}
	if v.blob == nil {
		result := v.result
		if v.resultInHistory {
			if result, err = s.historyResult(ctx, id, v.external); err != nil {
				return nil, j, err
			}
		}
		sum := sha256.Sum256(result)
		return &job.ResultStream{
			Content:     nopCloser{bytes.NewReader(result)},
			Size:        int64(len(result)),
			ContentType: "application/json",
			ModTime:     j.CompletedAt,
			Digest:      hex.EncodeToString(sum[:]),
		}, j, nil
	}
	if s.cfg.Blobs == nil {
		return nil, j, fmt.Errorf("job %s: its result is in blob storage (%s), and this API has none configured (JOBGATE_BLOB_URL)", id, v.blob.Key)
	}
	r, err := s.cfg.Blobs.Open(ctx, v.blob.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, j, fmt.Errorf("job %s: its result %s is missing from blob storage %s before its expiry; do API and workers share JOBGATE_BLOB_URL?", id, v.blob.Key, s.cfg.Blobs)
	}
	if err != nil {
		return nil, j, fmt.Errorf("job %s: %w (%v)", id, job.ErrUnavailable, err)
	}
	return &job.ResultStream{
		Content:     r,
		Size:        r.Size(),
		ContentType: v.blob.ContentType,
		Filename:    v.blob.Filename,
		ModTime:     r.ModTime(),
		Digest:      v.blob.SHA256,
	}, j, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
