package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/blob"
	"github.com/jobgate/jobgate/job"
)

func mustBlobs(t *testing.T) *blob.Store {
	t.Helper()
	s, err := blob.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func file(name, contentType, content string) *job.File {
	return &job.File{Name: name, ContentType: contentType, Write: func(_ context.Context, w io.Writer) error {
		for chunk := range strings.SplitSeq(content, ",") { // several writes
			if _, err := io.WriteString(w, chunk+","); err != nil {
				return err
			}
		}
		return nil
	}}
}

// Results stay inline up to the threshold; larger JSON and every file go to
// blob storage with their size, type, name and digest.
func TestStoreResults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	blobs := mustBlobs(t)
	w := &Worker{Blobs: blobs, ResultBlobThreshold: 64}
	info := job.Info{ID: "j1", Kind: "k"}

	out, err := w.store(ctx, info, map[string]int{"n": 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"n":1}`, string(out.Result))
	require.Nil(t, out.Blob)

	big := map[string]string{"s": strings.Repeat("x", 100)}
	out, err = w.store(ctx, info, big)
	require.NoError(t, err)
	require.Empty(t, out.Result)
	require.Equal(t, "results/j1/result.json", out.Blob.Key)
	require.Equal(t, "application/json", out.Blob.ContentType)
	data, err := blobs.Get(ctx, out.Blob.Key)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), out.Blob.Size)
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), out.Blob.SHA256)

	out, err = w.store(ctx, info, &job.File{ContentType: "application/json", Write: func(_ context.Context, w io.Writer) error {
		_, err := io.WriteString(w, `{"small":true}`)
		return err
	}})
	require.NoError(t, err)
	require.JSONEq(t, `{"small":true}`, string(out.Result), "a small JSON file stays inline")

	out, err = w.store(ctx, info, file("a.json", "application/json", "[1,2"))
	require.NoError(t, err)
	require.NotNil(t, out.Blob, "content that is not JSON is never inline")

	out, err = w.store(ctx, info, file("../../etc/jobs.csv", "text/csv", "a,b"))
	require.NoError(t, err)
	require.Equal(t, "results/j1/jobs.csv", out.Blob.Key, "no directories from the name")
	require.Equal(t, "jobs.csv", out.Blob.Filename)
	data, err = blobs.Get(ctx, out.Blob.Key)
	require.NoError(t, err)
	require.Equal(t, "a,b,", string(data))

	// A threshold of 0 sends every result to blob storage, the smallest
	// JSON and a small JSON file too.
	all := &Worker{Blobs: blobs}
	out, err = all.store(ctx, info, map[string]int{"n": 1})
	require.NoError(t, err)
	require.Empty(t, out.Result)
	require.NotNil(t, out.Blob)
	out, err = all.store(ctx, info, file("s.json", "application/json", "[1]"))
	require.NoError(t, err)
	require.Empty(t, out.Result)
	require.NotNil(t, out.Blob)

	noStore := &Worker{}
	_, err = noStore.store(ctx, info, file("x.csv", "text/csv", "a"))
	var perm *job.PermanentError
	require.True(t, errors.As(err, &perm))
	require.Equal(t, "no-blob-storage", perm.Type)
	out, err = noStore.store(ctx, info, big)
	require.NoError(t, err, "without blob storage JSON stays inline")
	require.NotEmpty(t, out.Result)
}
