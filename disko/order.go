package disko

import (
	"sort"
	"strings"
)

// toposort is nixpkgs' lib.toposort, step for step, so that fleet orders
// devices and mounts exactly as disko does: repeatedly take the first
// element, walk to an element that must come before it (the first such in
// the rest of the list) until none must, emit that one, and sort what
// remains (the walked elements first, in reverse walk order). ok is false
// on a cycle.
func toposort[T any](list []T, before func(a, b T) bool) (out []T, ok bool) {
	for len(list) >= 2 {
		us, visited, rest := list[0], []T(nil), list[1:]
		for {
			for _, v := range visited {
				if before(v, us) {
					return nil, false
				}
			}
			var right, wrong []T
			for _, x := range rest {
				if before(x, us) {
					right = append(right, x)
				} else {
					wrong = append(wrong, x)
				}
			}
			if len(right) == 0 {
				break
			}
			visited = append([]T{us}, visited...)
			us, rest = right[0], append(right[1:], wrong...)
		}
		out = append(out, us)
		list = append(visited, rest...)
	}
	return append(out, list...), true
}

// deviceOrder is disko's creation order of the top-level devices
// (sortDevicesByDependencies): the device attrsets in attr-name order
// (disk, lvm_vg, mdadm, nodev, zpool; each by attr name), toposorted so
// that a device comes after those it is built on.
func deviceOrder(s *Spec) []*Node {
	out, _ := orderDevices(s)
	return out
}

// orderDevices is deviceOrder; ok is false when devices are built on each
// other in a cycle (disko aborts; Parse refuses).
func orderDevices(s *Spec) ([]*Node, bool) {
	var list []*Node
	byKey := func(ns []*Node) []*Node {
		c := append([]*Node(nil), ns...)
		sort.SliceStable(c, func(i, j int) bool { return c[i].Key < c[j].Key })
		return c
	}
	list = append(list, byKey(s.Disks)...)
	list = append(list, byKey(s.VGs)...)
	list = append(list, byKey(s.MDs)...)
	list = append(list, byKey(s.Nodevs)...)
	list = append(list, byKey(s.Zpools)...)
	deps := dependencies(s)
	// disko's dependency list names a device by its type and name option;
	// its device list, by type and attr name.
	before := func(a, b *Node) bool {
		for _, d := range deps[b.Type+"."+b.Key] {
			if d == a.Type+"."+a.Name {
				return true
			}
		}
		return false
	}
	for _, n := range list {
		if before(n, n) { // inside itself: toposort does not see it
			return list, false
		}
	}
	out, ok := toposort(list, before)
	if !ok {
		return list, false
	}
	return out, true
}

// dependencies maps "mdadm.NAME", "lvm_vg.NAME" and "zpool.NAME" to the
// top-level devices ("disk.NAME"...) holding their members, as disko's
// _meta does.
func dependencies(s *Spec) map[string][]string {
	deps := map[string][]string{}
	var walk func(n *Node, top string)
	walk = func(n *Node, top string) {
		if n == nil {
			return
		}
		switch n.Type {
		case "mdraid":
			deps["mdadm."+n.MD] = append(deps["mdadm."+n.MD], top)
		case "lvm_pv":
			deps["lvm_vg."+n.VG] = append(deps["lvm_vg."+n.VG], top)
		case "zfs":
			deps["zpool."+n.Pool] = append(deps["zpool."+n.Pool], top)
		}
		for _, ds := range n.Datasets {
			walk(ds.Content, top)
		}
		for _, pt := range n.Partitions {
			walk(pt.Content, top)
		}
		for _, tp := range n.TableParts {
			walk(tp.Content, top)
		}
		for _, lv := range n.LVs {
			walk(lv.Content, top)
		}
		walk(n.Content, top)
	}
	for _, d := range s.Disks {
		walk(d, "disk."+d.Name)
	}
	for _, md := range s.MDs {
		walk(md, "mdadm."+md.Name)
	}
	for _, vg := range s.VGs {
		walk(vg, "lvm_vg."+vg.Name)
	}
	for _, z := range s.Zpools {
		walk(z, "zpool."+z.Name)
	}
	// Keyed by the attr name of the device that depends (disko's
	// deviceDependencies.TYPE.NAME, NAME being the referenced name).
	out := map[string][]string{}
	for _, md := range s.MDs {
		out["mdadm."+md.Key] = deps["mdadm."+md.Name]
	}
	for _, vg := range s.VGs {
		out["lvm_vg."+vg.Key] = deps["lvm_vg."+vg.Name]
	}
	for _, z := range s.Zpools {
		out["zpool."+z.Key] = deps["zpool."+z.Name]
	}
	return out
}

// fsBefore is disko's (and NixOS's) mount order relation: a mounts before
// b when a's mountpoint is a parent of b's mountpoint or of b's device.
func fsBefore(a, b mountEntry) bool {
	norm := func(p string) string {
		if strings.HasSuffix(p, "/") {
			return p
		}
		return p + "/"
	}
	mp := norm(a.mp)
	return strings.HasPrefix(norm(b.diskoDev), mp) || strings.HasPrefix(norm(b.mp), mp)
}

// mountOrder sorts mounts as disko's _mount does: by mountpoint, then
// toposorted by fsBefore.
func mountOrder(ms []mountEntry) []mountEntry {
	sorted := append([]mountEntry(nil), ms...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].mp < sorted[j].mp })
	out, ok := toposort(sorted, fsBefore)
	if !ok {
		return sorted
	}
	return out
}
