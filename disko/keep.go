package disko

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file decides what a plan keeps: the disks named by Options.Keep,
// and every top-level device built only on kept devices (an md array on
// two kept disks, a volume group on that array). A kept device is never
// wiped, partitioned or formatted: the plan checks it against the layout
// and brings it up as the layout describes (an array assembled, a LUKS
// device opened, a volume group activated), then mounts it.
//
// Keep works per top-level device, on disko's dependency graph
// (dependencies): a new kind of top-level device (a zpool) is kept the
// same way once its members are known there; what it does on a kept
// device is its creating action's keep method (keeper, action_keep.go).

// ErrKeep marks a --keep that cannot be: a name the layout lacks, or an
// array or volume group that would be half kept, half written.
var ErrKeep = errors.New("cannot keep")

// KeepError is a refused --keep, before anything runs.
type KeepError struct {
	Keep []string // the --keep names
	// Unknown is a name the layout has no disk for; Disks are the
	// layout's disks then.
	Unknown string
	Disks   []string
	// Device is a top-level device (mdadm.data) built on Kept and
	// NotKept devices; Missing are the disks under it to keep too.
	Device          string
	Kept, NotKept   []string
	Missing         []string
	unknownOrSpread error
}

func (e *KeepError) Error() string {
	flag := "--keep " + strings.Join(e.Keep, ",")
	if e.Unknown != "" {
		return fmt.Sprintf("%s: the layout has no disk %q (its disks: %s): %v: %v\nhint: name the layout's disks, as in --keep %s",
			flag, e.Unknown, strings.Join(e.Disks, ", "), e.unknownOrSpread, ErrRefused, strings.Join(e.Disks, ","))
	}
	all := append(slices.Clone(e.Keep), e.Missing...)
	return fmt.Sprintf("%s: %s is built on %s (kept) and %s (not kept): %v: %v\nhint: keep all of them (--keep %s) or none of them",
		flag, e.Device, strings.Join(e.Kept, ", "), strings.Join(e.NotKept, ", "), ErrKeep, ErrRefused, strings.Join(all, ","))
}

func (e *KeepError) Unwrap() []error { return []error{e.unknownOrSpread, ErrKeep, ErrRefused} }

// ErrKeepSpans marks an array or volume group that spans kept and
// written devices; ErrUnknownDisk, a --keep name the layout lacks.
var ErrKeepSpans = errors.New("spans kept and written disks")

// ValidateKeep checks --keep against the layout before anything runs:
// every name is one of its disks, and no array or volume group is built
// on both kept and other devices. BuildPlan calls it; an install calls it
// as soon as it has the layout, before connecting.
func ValidateKeep(s *Spec, keep []string) error {
	_, err := keptDevices(s, keep)
	return err
}

// keptDevices is the set of top-level devices a plan keeps.
func keptDevices(s *Spec, keep []string) (map[*Node]bool, error) {
	kept := map[*Node]bool{}
	if len(keep) == 0 {
		return kept, nil
	}
	for _, name := range keep {
		if s.disk(name) == nil {
			return nil, &KeepError{Keep: keep, Unknown: name, Disks: s.DiskNames(), unknownOrSpread: ErrUnknownDisk}
		}
	}
	byRef := map[string]*Node{} // "type.name", as dependencies names them
	for _, n := range append(append(append([]*Node{}, s.Disks...), s.MDs...), s.VGs...) {
		byRef[n.Type+"."+n.Name] = n
	}
	deps := dependencies(s)
	// disksUnder are the disks a device is built on, for the hint.
	disksUnder := map[*Node][]string{}
	for _, n := range deviceOrder(s) {
		switch n.Type {
		case "disk":
			kept[n] = slices.Contains(keep, n.Name)
			disksUnder[n] = []string{n.Name}
			continue
		case "nodev":
			continue
		}
		var yes, no []string
		for _, ref := range deps[n.Type+"."+n.Key] {
			d := byRef[ref]
			if d == nil {
				continue
			}
			for _, dn := range disksUnder[d] {
				if !slices.Contains(disksUnder[n], dn) {
					disksUnder[n] = append(disksUnder[n], dn)
				}
			}
			if kept[d] {
				yes = append(yes, ref)
			} else {
				no = append(no, ref)
			}
		}
		if len(yes) > 0 && len(no) > 0 {
			var missing []string
			for _, dn := range disksUnder[n] {
				if !slices.Contains(keep, dn) {
					missing = append(missing, dn)
				}
			}
			return nil, &KeepError{Keep: keep, Device: n.Type + "." + n.Name, Kept: yes, NotKept: no, Missing: missing, unknownOrSpread: ErrKeepSpans}
		}
		kept[n] = len(yes) > 0
	}
	return kept, nil
}

// KeptMismatchError is a kept device that is not what the layout
// describes: named, with what differs. Nothing was changed.
type KeptMismatchError struct {
	Device string // the top-level device: disk "data1", mdadm "data"
	Path   string // its device path
	Err    error  // what differs, naming the node
	Hint   string // what to do, when the check knows better than the default
}

func (e *KeptMismatchError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "fleet never writes to a kept device: check that --keep names the disks holding the data (and --device where they are), or leave a disk out of --keep to erase it"
	}
	return fmt.Sprintf("keep %s (%s): %v: %v\nhint: %s", e.Device, e.Path, e.Err, ErrRefused, hint)
}

func (e *KeptMismatchError) Unwrap() []error { return []error{e.Err, ErrKeep, ErrRefused} }

// topName names a top-level device for messages: disk "data1".
func topName(n *Node) string {
	t := n.Type
	if t == "lvm_vg" {
		t = "volume group"
	}
	return fmt.Sprintf("%s %q", t, n.Name)
}
