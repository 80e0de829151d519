package engine

import (
	"context"
	"time"

	"golang.org/x/sync/singleflight"
)

// shared runs lookup once for all the callers of key that come while it
// runs and gives each its result. The look-up has its own deadline
// (timeout) and no caller's cancellation, since others wait on it; a
// caller whose own context ends first stops waiting and gets that error,
// translated for op, while the look-up goes on for the others.
func shared[T any](ctx context.Context, g *singleflight.Group, key, op string, timeout time.Duration, lookup func(context.Context) (T, error)) (T, error) {
	ch := g.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		v, err := lookup(lctx)
		if err != nil {
			return nil, translate(op, err)
		}
		return v, nil
	})
	var zero T
	select {
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		return zero, translate(op, ctx.Err())
	}
}
