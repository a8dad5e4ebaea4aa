package disko

import (
	"errors"
	"fmt"
	pathpkg "path"
	"sort"
	"strings"
)

// Errors of a --device map. Both wrap [ErrRefused]: nothing has run.
var (
	// ErrUnknownDisk marks a --device NAME that is not one of the layout's
	// disks (a typo must never leave the layout's own device in place).
	ErrUnknownDisk = errors.New("unknown disk")
	// ErrBadDevice marks a --device PATH that cannot be a disk: relative,
	// unclean, or given to two disks.
	ErrBadDevice = errors.New("bad device path")
)

// DeviceError is a refused --device NAME=PATH.
type DeviceError struct {
	Name, Path string
	Reason     string   // what is wrong, for a bad path
	Disks      []string // the layout's disk names, for an unknown name
	err        error    // ErrUnknownDisk or ErrBadDevice
}

func (e *DeviceError) Error() string {
	if errors.Is(e.err, ErrUnknownDisk) {
		example := "NAME"
		if len(e.Disks) > 0 {
			example = e.Disks[0]
		}
		return fmt.Sprintf("--device %s=%s: the layout has no disk %q (its disks: %s): %v\nhint: name one of the layout's disks, as in --device %s=%s",
			e.Name, e.Path, e.Name, strings.Join(e.Disks, ", "), ErrRefused, example, e.Path)
	}
	return fmt.Sprintf("--device %s=%s: %s: %v", e.Name, e.Path, e.Reason, ErrRefused)
}

func (e *DeviceError) Unwrap() []error { return []error{e.err, ErrRefused} }

// DiskNames are the layout's disk names, as --device takes them.
func (s *Spec) DiskNames() []string {
	names := make([]string, 0, len(s.Disks))
	for _, d := range s.Disks {
		names = append(names, d.Name)
	}
	return names
}

// ValidateDevices checks a --device map (disk name -> device path) against
// the layout before anything runs: every name is one of the layout's disks,
// every path is absolute and clean, and no two disks end up on one device.
// BuildPlan and Apply call it; callers that take a device map (an install)
// call it as soon as they have both, so a typo fails before any connection.
func ValidateDevices(s *Spec, devices map[string]string) error {
	names := make([]string, 0, len(devices))
	for name := range devices {
		names = append(names, name)
	}
	sort.Strings(names)
	byPath := map[string]string{}
	for _, d := range s.Disks {
		if _, ok := devices[d.Name]; !ok {
			byPath[d.Device] = d.Name
		}
	}
	for _, name := range names {
		p := devices[name]
		if s.disk(name) == nil {
			return &DeviceError{Name: name, Path: p, Disks: s.DiskNames(), err: ErrUnknownDisk}
		}
		bad := func(reason string) error {
			return &DeviceError{Name: name, Path: p, Reason: reason, err: ErrBadDevice}
		}
		switch {
		case !strings.HasPrefix(p, "/"):
			return bad("the path must be absolute, like /dev/sdb")
		case pathpkg.Clean(p) != p:
			return bad(fmt.Sprintf("write the path as %s", pathpkg.Clean(p)))
		}
		if other, ok := byPath[p]; ok {
			return bad(fmt.Sprintf("disk %q is on that device too; two disks cannot share one", other))
		}
		byPath[p] = name
	}
	return nil
}

// disk is the layout's disk named name, or nil.
func (s *Spec) disk(name string) *Node {
	for _, d := range s.Disks {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// Target is a disk about to be written, as the typed confirmation shows it:
// its name in the layout and the device path it resolves to.
type Target struct {
	Name   string // the layout's disk name (disk.NAME)
	Device string // its device path, after --device (/dev/disk/by-id/...)
	Node   string // the kernel node that path resolves to (/dev/sda)
	Size   int64  // bytes
	// TakeDown is what destroy takes down on the disk before erasing it,
	// in order: md arrays, volume groups, LUKS mappings (an old install
	// udev assembled), and the signatures it wipes ("md array md127
	// (raid1) of vdb1, vdc1: stopped").
	TakeDown []string
}
