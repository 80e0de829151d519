package blob_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/blob"
)

func TestFileStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	s, err := blob.Open(ctx, "file://"+dir)
	require.NoError(t, err, "the directory is created")
	t.Cleanup(func() { _ = s.Close() })

	require.NoError(t, s.Put(ctx, "results/j1/a.csv", []byte("id,kind\n1,sleep\n"), blob.Attrs{ContentType: "text/csv", Filename: "a.csv"}))
	r, err := s.Open(ctx, "results/j1/a.csv")
	require.NoError(t, err)
	require.Equal(t, "text/csv", r.ContentType())
	require.Equal(t, "a.csv", r.Filename)
	require.EqualValues(t, 16, r.Size())
	_, err = r.Seek(8, io.SeekStart)
	require.NoError(t, err)
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "1,sleep\n", string(rest))
	require.NoError(t, r.Close())

	w, err := s.Create(ctx, "results/j1/b.json", blob.Attrs{ContentType: "application/json"})
	require.NoError(t, err)
	_, err = w.Write([]byte("{}"))
	require.NoError(t, err)
	w.Abort()
	ok, err := s.Exists(ctx, "results/j1/b.json")
	require.NoError(t, err)
	require.False(t, ok, "an aborted blob is not visible")

	require.NoError(t, s.Put(ctx, "results/j1/c", []byte("x"), blob.Attrs{}))
	keys, err := s.List(ctx, "results/j1/")
	require.NoError(t, err)
	require.Equal(t, []string{"results/j1/a.csv", "results/j1/c"}, keys)
	require.NoError(t, s.DeletePrefix(ctx, "results/j1/"))
	require.NoError(t, s.Delete(ctx, "results/j1/a.csv"), "deleting a missing blob is fine")
	_, err = s.Get(ctx, "results/j1/a.csv")
	require.True(t, errors.Is(err, blob.ErrNotFound))
	_, err = s.Open(ctx, "results/j1/c")
	require.True(t, errors.Is(err, blob.ErrNotFound))
}

func TestOpenRefusesUnknownSchemes(t *testing.T) {
	t.Parallel()
	_, err := blob.Open(context.Background(), "nosuch://bucket")
	require.ErrorContains(t, err, "driver")
	_, err = blob.Open(context.Background(), "just a path")
	require.ErrorContains(t, err, "not a URL")
}
