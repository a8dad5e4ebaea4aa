package disko

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// PVCreate makes an LVM physical volume.
type PVCreate struct{ formatter }

func (*PVCreate) Kind() string { return "pvcreate" }

// VGCreate makes a volume group of the layout's PVs. An existing group
// with other PVs is a mismatch.
type VGCreate struct{}

func (*VGCreate) Kind() string { return "vgcreate" }

// vgPVs are the kernel nodes of the PVs of the volume group, nil if the
// group does not exist.
func vgPVs(ctx context.Context, a *applier, vg string) []string {
	out, err := a.out(ctx, "vgs", "--noheadings", "-o", "pv_name", vg)
	if err != nil {
		return nil
	}
	var pvs []string
	for _, f := range strings.Fields(string(out)) {
		pvs = append(pvs, a.kernelNode(ctx, f))
	}
	return pvs
}

func (*VGCreate) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	have := vgPVs(ctx, a, st.Device)
	if have == nil {
		return false, nil
	}
	for _, pv := range st.Cmds[0][2:] {
		if !slices.Contains(have, a.kernelNode(ctx, pv)) {
			return false, mismatch(st.Node, fmt.Sprintf("volume group %s exists on %s, without %s", st.Device, strings.Join(have, ", "), pv))
		}
	}
	return true, nil
}

func (*VGCreate) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*VGCreate) verify(ctx context.Context, a *applier, st *Step) error {
	if vgPVs(ctx, a, st.Device) == nil {
		return fmt.Errorf("volume group %s missing after vgcreate: %w", st.Device, ErrVerify)
	}
	return nil
}

// LVCreate makes a logical volume: linear, raid, a thin pool (which has no
// device node) or a thin volume in its pool.
type LVCreate struct{}

func (*LVCreate) Kind() string { return "lvcreate" }

// lvExists asks lvm, as thin pools have no /dev node.
func lvExists(ctx context.Context, a *applier, dev string) bool {
	_, err := a.out(ctx, "lvs", "--noheadings", "-o", "lv_name", strings.TrimPrefix(dev, "/dev/"))
	return err == nil
}

func (*LVCreate) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return lvExists(ctx, a, st.Device), nil
}

func (*LVCreate) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*LVCreate) verify(ctx context.Context, a *applier, st *Step) error {
	if !lvExists(ctx, a, st.Device) {
		return fmt.Errorf("%s missing after lvcreate: %w", st.Device, ErrVerify)
	}
	return nil
}

// VGChange activates (mount) or deactivates (unmount) a volume group.
type VGChange struct {
	Active bool
	// kept: a kept group's activation, done when every LV is active
	// already (so that taking it down again leaves it as it was found).
	kept bool
	unverified
}

func (*VGChange) Kind() string { return "vgchange" }

// check: deactivating is teardown, and a volume group that is not there
// (blank disks before destroy) has nothing to deactivate.
func (v *VGChange) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	if v.Active {
		if !v.kept {
			return false, nil
		}
		out, err := a.out(ctx, "lvs", "--noheadings", "-o", "lv_attr", st.Device)
		if err != nil {
			return false, nil
		}
		for _, attr := range strings.Fields(string(out)) {
			if len(attr) < 5 || attr[4] != 'a' {
				return false, nil
			}
		}
		return true, nil
	}
	return vgPVs(ctx, a, st.Device) == nil, nil
}

func (*VGChange) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }
