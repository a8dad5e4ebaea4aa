package disko

import (
	"context"
	"fmt"
	"sort"
)

// Wipe erases a disk for destroy, as disko's disk-deactivate does: it
// takes down what is built on the disk (md arrays stopped, dm devices —
// LUKS mappings, LVs — removed; the deepest first), then erases every
// signature on its partitions and on the disk (wipefs). A disk with
// destroy = false has no Wipe step.
type Wipe struct{ always }

func (*Wipe) Kind() string { return "wipe" }

func (*Wipe) act(ctx context.Context, a *applier, st *Step) error {
	tree, err := a.tree(ctx, st.Device)
	if err != nil {
		return err
	}
	sort.SliceStable(tree, func(i, j int) bool { return tree[i].depth > tree[j].depth })
	for _, b := range tree {
		var args []string
		switch {
		case b.depth == 0:
			continue
		case b.dmName != "":
			args = []string{"dmsetup", "remove", "--retry", b.dmName}
		default:
			args = []string{"mdadm", "--stop", "/dev/" + b.name}
		}
		a.log.Info("take down", "device", b.name, "cmd", args)
		if err := a.run(ctx, st, args); err != nil {
			return err
		}
	}
	for _, b := range tree {
		if b.depth == 0 && "/dev/"+b.name != st.Device {
			if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", "/dev/" + b.name}); err != nil {
				return err
			}
		}
	}
	return a.runCmds(ctx, st)
}

func (*Wipe) verify(ctx context.Context, a *applier, st *Step) error {
	if t, err := a.blkType(ctx, st.Device, true); err != nil || t != "" {
		return fmt.Errorf("blkid still finds %q on %s after wipefs: %w", t, st.Device, ErrVerify)
	}
	return nil
}
