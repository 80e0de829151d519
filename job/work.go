package job

import (
	"context"
	"io"
)

// File is a result that is a file (an export, an archive, a large JSON
// document) rather than a JSON value held in memory. A kind's Run returns a
// *File; the worker then calls Write once, streaming what it writes to blob
// storage, and the result endpoint serves the file with its content type,
// length and name, with range requests.
type File struct {
	// Name is the file name a download suggests ("jobs-<id>.csv").
	Name string
	// ContentType is the file's media type ("text/csv; charset=utf-8").
	ContentType string
	// Write writes the file's content to w. It must stop when ctx is done.
	// An error is handled as an error of Run.
	Write func(ctx context.Context, w io.Writer) error
}

// Info identifies the job a kind's Run works on.
type Info struct {
	// ID is the job's id.
	ID string
	// Tenant owns the job.
	Tenant string
	// Kind is the job's kind.
	Kind string
	// Attempt counts the tries of the work, from 1.
	Attempt int
}

type infoKey struct{}
type stoppingKey struct{}

// WithInfo returns ctx carrying info, for the worker to hand to Run.
func WithInfo(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the job a Run works on; ok is false outside a worker.
func InfoFrom(ctx context.Context) (info Info, ok bool) {
	info, ok = ctx.Value(infoKey{}).(Info)
	return info, ok
}

// WithStopping returns ctx carrying the channel its worker closes when it
// shuts down.
func WithStopping(ctx context.Context, stopping <-chan struct{}) context.Context {
	return context.WithValue(ctx, stoppingKey{}, stopping)
}

// Stopping returns a channel that is closed when the worker running the job
// shuts down (nil, which never closes, outside a worker). Long work that can
// resume, as batch.http does, stops starting new pieces then, finishes the
// ones in flight, records them and returns an error, so that another worker
// continues without redoing them. ctx is canceled later, after the worker's
// stop timeout.
func Stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}
