package provision

import (
	"errors"
	"fmt"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
)

// ErrPhase wraps the failure of a phase; PhaseError says which.
var ErrPhase = errors.New("install phase failed")

// PhaseError is a failed phase, with whether anything was changed yet.
type PhaseError struct {
	Phase   string
	Err     error
	Changed bool // false: nothing on the target was touched
}

func (e *PhaseError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Phase, e.Err)
	if !e.Changed && !errors.Is(e.Err, disko.ErrRefused) { // that one says so itself
		msg += "\nno changes made"
	}
	return msg
}

func (e *PhaseError) Unwrap() []error { return []error{ErrPhase, e.Err} }

// OptionError is an option that is wrong in itself or with the others (a
// flag, in the CLI): nothing was attempted.
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

func badOption(format string, args ...any) error {
	return &OptionError{fmt.Errorf(format, args...)}
}

// noSpace is a write on the installer that failed for want of space: one
// line naming the new root and the failed write, and a hint. The remote
// command's error stays in the chain.
type noSpace struct {
	root, cause string
	err         error
}

func (e *noSpace) Error() string {
	return fmt.Sprintf("the installer ran out of space writing under %s: %s\nhint: run df -h %s on the installer: mount the target disks there (the disko phase does) or give the root filesystem more room, then run fleet install --resume", e.root, e.cause, e.root)
}

func (e *noSpace) Unwrap() error { return e.err }

// writeFailed describes a failed write under root: a noSpace when the
// remote command failed with ENOSPC (its stderr says so), else err behind
// what ("stage the flake: ...").
func writeFailed(err error, root, what string) error {
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		if l := ee.StderrLine("No space left on device"); l != "" {
			return &noSpace{root: root, cause: l, err: err}
		}
	}
	if what == "" {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}
