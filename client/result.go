package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// Result is a succeeded job's result, streamed from the server.
type Result struct {
	// Body is the result itself. The caller reads it and must close it;
	// reading ends with an error if the Client's context ends first.
	Body io.ReadCloser
	// ContentType is the result's media type as the server sent it
	// ("application/json", "text/csv").
	ContentType string
	// ContentLength is the size of Body in bytes, or -1 if unknown.
	ContentLength int64
	// Filename is the file name the server suggests (Content-Disposition),
	// or "". It is the server's text: sanitize it before using it as a path.
	Filename string
}

// Result returns the result of a succeeded job, streamed: small JSON
// results and large files (exports, archives) alike. The caller must close
// Result.Body.
//
// It returns a *Problem for an error answer (ErrConflict while the job has
// not succeeded, or when it failed or was canceled, with the job's error in
// Problem.JobError; ErrGone when the result expired; ErrNotFound),
// ctx.Err() when ctx ends, or a transport error.
func (c *Client) Result(ctx context.Context, id string) (*Result, error) {
	path, err := jobPath(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path + "/result", header: http.Header{"Accept": {"*/*"}}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, problemFrom(resp)
	}
	r := &Result{
		Body:          resp.Body,
		ContentType:   resp.Header.Get("Content-Type"),
		ContentLength: resp.ContentLength,
	}
	if _, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition")); err == nil {
		r.Filename = params["filename"]
	}
	return r, nil
}

// ResultJSON decodes the result of a succeeded job, which must be JSON,
// into v (as json.Unmarshal does).
//
// It returns the errors Result returns, and an error when the result is not
// JSON (read it with Result instead) or does not decode into v.
func (c *Client) ResultJSON(ctx context.Context, id string, v any) error {
	r, err := c.Result(ctx, id)
	if err != nil {
		return err
	}
	defer drainClose(r.Body)
	if mt := mediaType(r.ContentType); r.ContentType != "" && !isJSON(mt) {
		return fmt.Errorf("jobgate client: the result of job %s is %s, not JSON; read it with Result", id, r.ContentType)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("jobgate client: decoding the result of job %s into %T: %w", id, v, err)
	}
	return nil
}
