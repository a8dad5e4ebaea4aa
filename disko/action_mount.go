package disko

import (
	"context"
	"fmt"
	"strings"
)

// Mount mounts a filesystem (or nodev) under the root. Something else
// mounted there already is a mismatch.
type Mount struct{}

func (*Mount) Kind() string { return "mount" }

func (*Mount) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	m, err := a.mountedAt(ctx, st.Mountpoint)
	if err != nil || m == nil {
		return false, err
	}
	if m.fstype != st.FSType || (st.Device != "none" && m.fstype != "tmpfs" && !a.sameDevice(ctx, m.source, a.resolve(ctx, st.Device))) {
		return false, withHint(fmt.Errorf("%s is already mounted from %s (%s), the layout wants %s (%s): %w", st.Mountpoint, m.source, m.fstype, st.Device, st.FSType, ErrMismatch), "unmount it first")
	}
	return true, nil
}

func (*Mount) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*Mount) verify(ctx context.Context, a *applier, st *Step) error {
	if m, err := a.mountedAt(ctx, st.Mountpoint); err != nil || m == nil || m.fstype != st.FSType {
		return fmt.Errorf("%s is not mounted as %s after mount: %w", st.Mountpoint, st.FSType, ErrVerify)
	}
	return nil
}

// Umount unmounts one of the layout's mounts.
type Umount struct{}

func (*Umount) Kind() string { return "umount" }

func (*Umount) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	m, err := a.mountedAt(ctx, st.Mountpoint)
	return m == nil, err
}

func (*Umount) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*Umount) verify(ctx context.Context, a *applier, st *Step) error {
	if m, _ := a.mountedAt(ctx, st.Mountpoint); m != nil {
		return fmt.Errorf("%s is still mounted: %w", st.Mountpoint, ErrVerify)
	}
	return nil
}

// Swapoff stops swapping on one of the layout's swap devices.
type Swapoff struct{}

func (*Swapoff) Kind() string { return "swapoff" }

// swapping reports whether dev is in /proc/swaps.
func swapping(ctx context.Context, a *applier, dev string) (bool, error) {
	sw, err := a.out(ctx, "cat", "/proc/swaps")
	if err != nil {
		return false, err
	}
	real := a.kernelNode(ctx, dev)
	for _, l := range strings.Split(string(sw), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == real {
			return true, nil
		}
	}
	return false, nil
}

func (*Swapoff) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	on, err := swapping(ctx, a, st.Device)
	return !on, err
}

func (*Swapoff) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*Swapoff) verify(ctx context.Context, a *applier, st *Step) error {
	if on, _ := swapping(ctx, a, st.Device); on {
		return fmt.Errorf("%s still in use as swap: %w", st.Device, ErrVerify)
	}
	return nil
}
