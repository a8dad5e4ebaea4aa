package disko

import (
	"context"
	"fmt"
)

// Wipe erases a disk for destroy, as disko's disk-deactivate does: it
// takes down what is built on the disk (see teardown: ZFS pools destroyed
// and their labels cleared, volume groups deactivated, LUKS mappings
// closed, other dm devices removed, md arrays wiped and stopped; the
// deepest first), then erases every signature on its partitions and on the
// disk (wipefs). What is also built on a disk outside the layout stops it
// (Apply refused it already; this checks again, as udev may have
// assembled something since). A disk with destroy = false has no Wipe
// step.
type Wipe struct{ always }

func (*Wipe) Kind() string { return "wipe" }

func (*Wipe) act(ctx context.Context, a *applier, st *Step) error {
	tree, pvs, err := a.tree(ctx, st.Device)
	if err != nil {
		return err
	}
	if a.targets != nil {
		if err := outsiders(tree, pvs, a.targets); err != nil {
			return fmt.Errorf("%w: %w", err, ErrInUse)
		}
	}
	if err := a.zfsTeardown(ctx, st, tree); err != nil {
		return err
	}
	for _, td := range teardown(tree, a.have) {
		if td.what != "" {
			a.log.Info("take down", "disk", st.Disk, "what", td.what, "cmd", td.args)
		}
		if err := a.run(ctx, st, td.args); err != nil {
			return err
		}
	}
	return a.runCmds(ctx, st)
}

// verify: blkid finds nothing on the disk, and nothing is built on it.
func (*Wipe) verify(ctx context.Context, a *applier, st *Step) error {
	if t, err := a.blkType(ctx, st.Device, true); err != nil || t != "" {
		return fmt.Errorf("blkid still finds %q on %s after wipefs: %w", t, st.Device, ErrVerify)
	}
	tree, _, err := a.tree(ctx, st.Device)
	if err != nil {
		return err
	}
	for _, b := range tree {
		if b.depth > 0 {
			return fmt.Errorf("%s is still built on %s after the teardown: %w", b.label(), st.Device, ErrVerify)
		}
	}
	return nil
}
