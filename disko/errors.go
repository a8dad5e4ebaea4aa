package disko

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Refusals before any change wrap ErrRefused.
var (
	ErrRefused       = errors.New("no changes made")
	ErrMissingDevice = errors.New("device not found")
	ErrInUse         = errors.New("disk in use")
	ErrTooSmall      = errors.New("disk too small")
	ErrMismatch      = errors.New("existing layout does not match")
	ErrVerify        = errors.New("verification failed")
	// ErrTool marks a program the layout needs that the installer lacks,
	// or has in a version too old for it.
	ErrTool = errors.New("installer tool missing or too old")
	// ErrForeignPool marks a disk of the layout that holds a ZFS pool the
	// layout does not have: fleet never erases a pool it was not told of.
	ErrForeignPool = errors.New("zfs pool not in the layout")
	// ErrPoolInUse marks a pool another system imported and did not
	// export: it may be in use there.
	ErrPoolInUse = errors.New("zfs pool in use elsewhere")
	// ErrWrongKey marks a --disk-key that does not open its dataset.
	ErrWrongKey = errors.New("wrong key")
)

// hinted is an error followed by a line saying what to do. Wrapping it
// with a prefix keeps the hint last; refused puts "no changes made"
// before the hint.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() + "\nhint: " + h.hint }
func (h *hinted) Unwrap() error { return h.err }

func withHint(err error, format string, args ...any) error {
	return &hinted{err: err, hint: fmt.Sprintf(format, args...)}
}

// refused marks err as a refusal before any change, keeping its hint last.
func refused(err error) error {
	if errors.Is(err, ErrRefused) {
		return err
	}
	var h *hinted
	if errors.As(err, &h) && h == err {
		return &hinted{err: fmt.Errorf("%w: %w", h.err, ErrRefused), hint: h.hint}
	}
	return fmt.Errorf("%w: %w", err, ErrRefused)
}

// mismatch is what is on a disk conflicting with the layout.
func mismatch(node, what string) error {
	return withHint(fmt.Errorf("%s: %s: %w", node, what, ErrMismatch), "pass --wipe to replace it")
}
