package disko

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// Action is what a step does, in three parts, as Ignition's stages do:
// check looks at the machine (done: the result is already there, so
// nothing runs; an error: what is there conflicts with the layout), act
// makes the change, verify confirms it. Each kind of action is its own
// type, in the file of its family (action_gpt.go, action_fs.go...).
type Action interface {
	// Kind names the action in plans and logs: mkfs, partition, mount...
	Kind() string
	check(ctx context.Context, a *applier, st *Step) (done bool, err error)
	act(ctx context.Context, a *applier, st *Step) error
	verify(ctx context.Context, a *applier, st *Step) error
}

// StepError is a step that failed after the run began. It names the step
// and what is on the disks at that moment, so the operator knows where
// the layout stands.
type StepError struct {
	Step  string // "format mkfs disk.main.content.partitions.root.content"
	Err   error
	State []string // lsblk's view of the layout's disks after the failure
}

func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString(e.Step + ": " + e.Err.Error())
	if len(e.State) > 0 {
		b.WriteString("\non the disks now:")
		for _, l := range e.State {
			b.WriteString("\n  " + l)
		}
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// runStep checks, acts and verifies one step, with a log line for each.
func (a *applier) runStep(ctx context.Context, st *Step) (err error) {
	l := a.log.With("phase", string(st.Phase), "disk", st.Disk, "action", st.Kind(), "node", st.Node)
	var cmdline []string
	for _, c := range st.Cmds {
		cmdline = append(cmdline, remote.ShellJoin(c))
	}
	l.Info("step started", "cmd", strings.Join(cmdline, "; "))
	defer func() {
		if err == nil {
			return
		}
		l.Error("step failed", "err", err)
		// A disk that vanished mid-way (cable, controller) explains every
		// later failure on it: say so first.
		if st.DiskDev != "" && ctx.Err() == nil && a.gone(ctx, st.DiskDev) {
			err = fmt.Errorf("disk %q (%s) disappeared: %w: %w", st.Disk, st.DiskDev, ErrMissingDevice, err)
		}
		se := &StepError{Step: st.String(), Err: err}
		if ctx.Err() == nil {
			se.State = a.state(ctx)
		}
		err = se
	}()
	done, err := st.Action.check(ctx, a, st)
	if err != nil {
		return err
	}
	if done {
		l.Info("step finished", "result", "already done")
		return nil
	}
	if err := st.Action.act(ctx, a, st); err != nil {
		return err
	}
	if err := st.Action.verify(ctx, a, st); err != nil {
		return err
	}
	l.Info("step finished")
	return nil
}

// runCmds runs the step's commands in order, with md and other links
// resolved to the devices they stand for.
func (a *applier) runCmds(ctx context.Context, st *Step) error {
	for _, c := range st.Cmds {
		if err := a.run(ctx, st, a.resolveArgs(ctx, c)); err != nil {
			return err
		}
	}
	return nil
}

// run runs one command of st, feeding it the step's key when it has one.
func (a *applier) run(ctx context.Context, st *Step, args []string) error {
	c := remote.Cmd{Args: args}
	if st.KeyName != "" {
		key, ok := a.opt.Keys[st.KeyName]
		if !ok {
			return fmt.Errorf("%s: no key for %s %q\nhint: pass --disk-key %s=FILE", st.Node, keyKind(st), st.KeyName, st.KeyName)
		}
		c.Stdin, c.Quiet = strings.NewReader(string(key)), true
	}
	_, err := a.r.Run(ctx, c)
	return err
}

// always is an action's check when it has nothing to look at.
type always struct{}

func (always) check(context.Context, *applier, *Step) (bool, error) { return false, nil }

// unverified is an action's verify when the command's exit status is all
// there is to know (hooks, deactivation).
type unverified struct{}

func (unverified) verify(context.Context, *applier, *Step) error { return nil }

// passive marks actions whose check says nothing about whether a disk
// gets written (probes read, hooks always run): Apply's look-ahead skips
// them when it decides which disks a format touches.
type passive struct{}

func (passive) isPassive() {}

// Hook is a preCreateHook or postCreateHook, run in bash.
type Hook struct {
	Name string // preCreateHook or postCreateHook
	always
	unverified
	passive
}

func (h *Hook) Kind() string { return h.Name }

func (h *Hook) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

// blkidIs verifies that blkid finds want on the step's device.
func (a *applier) blkidIs(ctx context.Context, st *Step, want string) error {
	dev := a.resolve(ctx, st.Device)
	t, err := a.blkType(ctx, dev, false)
	if err != nil || t != want {
		return fmt.Errorf("blkid finds %q on %s, want %s: %w", t, dev, want, ErrVerify)
	}
	return nil
}
