package blob_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// A listing that meets a blob deleted while it is read (on a file bucket,
// between reading the directory and the file's size) still succeeds: the
// blob is either in it or not, never an error. Writes in progress (their
// temporary files) are not listed. About 3,000 writes and deletes a second
// fail a single reading of the directory about one time in six here.
func TestListWhileBlobsAreDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := blob.Open(ctx, "file://"+t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	const stable = 50
	for i := range stable {
		require.NoError(t, s.Put(ctx, fmt.Sprintf("p/stable-%03d", i), []byte("x"), blob.Attrs{}))
	}
	stop := make(chan struct{})
	churned := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				churned <- nil
				return
			default:
			}
			time.Sleep(200 * time.Microsecond)
			key := fmt.Sprintf("p/churn-%03d", i%200)
			if err := s.Put(ctx, key, []byte("y"), blob.Attrs{}); err != nil {
				churned <- err
				return
			}
			if err := s.Delete(ctx, key); err != nil {
				churned <- err
				return
			}
		}
	}()
	for range 300 {
		objs, err := s.Objects(ctx, "p/")
		if err != nil {
			close(stop)
			<-churned
			require.NoError(t, err)
		}
		n := 0
		for _, o := range objs {
			require.False(t, strings.HasSuffix(o.Key, ".tmp"), "a write in progress is listed: %s", o.Key)
			if strings.HasPrefix(o.Key, "p/stable-") {
				n++
			}
		}
		require.Equal(t, stable, n, "every blob that stays is listed")
	}
	close(stop)
	require.NoError(t, <-churned)
}
