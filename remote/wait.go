package remote

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrWaitTimeout: the host did not answer SSH with the expected key in time.
var ErrWaitTimeout = errors.New("host did not come back")

// WaitForSSH dials target until it answers with a host key that passes
// o.HostKey, backing off from 250ms to 5s, for at most timeout. It returns
// the connected client and how long it took. A host answering with another
// key (the installer still shutting down, say) is retried until the end,
// and named in the final error.
func WaitForSSH(ctx context.Context, target Target, o Options, timeout time.Duration) (*Client, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 250 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		do := o
		if do.Timeout == 0 || do.Timeout > 10*time.Second {
			do.Timeout = 10 * time.Second
		}
		c, err := Dial(ctx, target, do)
		if err == nil {
			return c, time.Since(start), nil
		}
		if errors.Is(err, ErrNoAuth) || errors.Is(err, ErrNoTerminal) || errors.Is(err, ErrBadTarget) ||
			errors.Is(err, ErrPasswordRefused) || errors.Is(err, ErrPasswordNeeded) || errors.Is(err, ErrNoSudo) {
			// Waiting cannot fix these, and a password is never retried.
			return nil, time.Since(start), err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if parent := context.Cause(ctx); errors.Is(parent, context.Canceled) {
				return nil, time.Since(start), parent
			}
			return nil, time.Since(start), fmt.Errorf("%w: %s after %s (%d attempts); last error: %w", ErrWaitTimeout, target, time.Since(start).Round(time.Second), attempt, last)
		case <-time.After(delay):
		}
		if delay *= 2; delay > 5*time.Second {
			delay = 5 * time.Second
		}
	}
}
