package disko

import (
	"slices"
	"strings"
)

// This file plans mounting and unmounting, in disko's order.

// mountEntry is a filesystem (or nodev) the layout mounts.
type mountEntry struct {
	mp, dev, fstype string
	diskoDev        string // disko's device, for the mount order
	opts            []string
	node            string
	disk            string
}

// unmountEntry is an entry of disko's unmount list: a mountpoint or a
// swap device, by key.
type unmountEntry struct {
	key  string
	step Step
}

// mount records that n's filesystem (on dev) mounts on mp, and its unmount.
func (p *planner) mount(n *Node, mp, dev, fstype string, opts []string, node, disk string) {
	if mp == "" {
		return
	}
	p.mounts = append(p.mounts, mountEntry{mp: mp, dev: dev, diskoDev: n.Device, fstype: fstype, opts: opts, node: node, disk: disk})
	p.unmounts = append(p.unmounts, unmountEntry{mp, Step{Phase: PhaseUnmount, Action: &Umount{}, Disk: disk, Node: node, Device: dev,
		Mountpoint: p.under(mp), Cmds: [][]string{{"umount", p.under(mp)}}}})
}

// mountSteps: disko's mount script opens the devices (luks, lvm) in
// device order, then mounts the filesystems in mount order.
func (p *planner) mountSteps(s *Spec, order []*Node) []Step {
	var out []Step
	var devs func(n *Node)
	devs = func(n *Node) {
		if n == nil {
			return
		}
		if n.Type == "luks" {
			out = append(out, p.luksOpen[n])
		}
		for _, pt := range n.Partitions {
			devs(pt.Content)
		}
		for _, tp := range n.TableParts {
			devs(tp.Content)
		}
		devs(n.Content)
	}
	for _, top := range order {
		switch top.Type {
		case "mdadm":
			// Arrays stopped by an unmount are assembled again from their
			// members (disko assumes they run).
			args := append([]string{"mdadm", "--assemble", top.Device}, p.mdMembers[top.Name]...)
			out = append(out, Step{Phase: PhaseMount, Action: &MDAssemble{Name: top.Name}, Node: top.Path, Device: top.Device, Cmds: [][]string{args}})
			devs(top.Content)
		case "lvm_vg":
			out = append(out, Step{Phase: PhaseMount, Action: &VGChange{Active: true}, Node: top.Path, Device: top.Name, Cmds: [][]string{{"vgchange", "-a", "y", top.Name}}})
			for _, lv := range top.LVs {
				devs(lv.Content)
			}
		case "zpool":
			p.zpoolMount(top, func(st Step) { out = append(out, st) }, devs)
		default:
			devs(top)
		}
	}
	for _, m := range mountOrder(p.mounts) {
		target := p.under(m.mp)
		out = append(out, Step{Phase: PhaseMount, Action: &Mount{}, Disk: m.disk, Node: m.node, Device: m.dev, FSType: m.fstype, Mountpoint: target,
			Cmds: [][]string{{"mount", "-t", m.fstype, "-o", strings.Join(m.opts, ","), "-o", "X-mount.mkdir", m.dev, target}}})
	}
	return out
}

// unmountSteps: disko's unmount script unmounts (and swaps off) by key in
// reverse order, children first, then closes the devices in reverse
// device order: each device's content before the device. The devices in
// spare (kept ones, before a destroy) are unmounted but stay up.
func (p *planner) unmountSteps(order []*Node, spare map[*Node]bool) []Step {
	var out []Step
	entries := append([]unmountEntry(nil), p.unmounts...)
	slices.SortStableFunc(entries, func(a, b unmountEntry) int { return strings.Compare(b.key, a.key) })
	for _, e := range entries {
		out = append(out, e.step)
	}
	var devs func(n *Node)
	devs = func(n *Node) {
		if n == nil {
			return
		}
		for _, pt := range n.Partitions {
			devs(pt.Content)
		}
		for _, tp := range n.TableParts {
			devs(tp.Content)
		}
		devs(n.Content)
		if n.Type == "luks" {
			out = append(out, Step{Phase: PhaseUnmount, Action: &LuksClose{}, Node: n.Path, Device: "/dev/mapper/" + n.Name, Cmds: [][]string{{"cryptsetup", "close", n.Name}}})
		}
	}
	for i := len(order) - 1; i >= 0; i-- {
		top := order[i]
		if spare[top] {
			continue
		}
		switch top.Type {
		case "lvm_vg":
			for _, lv := range top.LVs {
				devs(lv.Content)
			}
			out = append(out, Step{Phase: PhaseUnmount, Action: &VGChange{}, Node: top.Path, Device: top.Name, Cmds: [][]string{{"vgchange", "-a", "n", top.Name}}})
		case "mdadm":
			devs(top.Content)
			out = append(out, Step{Phase: PhaseUnmount, Action: &MDStop{Name: top.Name}, Node: top.Path, Device: top.Device, Cmds: [][]string{{"mdadm", "--stop", top.Device}}})
		case "zpool":
			p.zpoolUnmount(top, func(st Step) { out = append(out, st) }, devs)
		default:
			devs(top)
		}
	}
	return out
}
