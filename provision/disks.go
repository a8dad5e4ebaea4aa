package provision

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
)

// The disko modes the pipeline uses besides the disko phase's
// (DiskOptions.Mode).
var (
	mountIt = disko.Mode{Mount: true}   // a resumed run, after an interrupt unmounted
	unmount = disko.Mode{Unmount: true} // before the reboot, and after an interrupt
)

// ParseDiskoMode reads --disko-mode, nixos-anywhere's values: disko (or
// destroy, the spelling) erases the layout's disks, formats and
// mounts them; format creates what is missing without erasing, and
// mounts (nixos-anywhere's format only creates; an install needs its root
// mounted); mount only mounts what is there. "" is disko.
func ParseDiskoMode(s string) (disko.Mode, error) {
	switch s {
	case "", "disko", "destroy":
		return disko.ModeDestroyFormatMount, nil
	case "format":
		return disko.ModeFormatMount, nil
	case "mount":
		return disko.ModeMount, nil
	}
	return disko.Mode{}, badOption("--disko-mode %q: want disko (or destroy), format or mount", s)
}

// Disks lays out, mounts and unmounts the host's disks. The disko
// package does it (newDiskoLayout); tests give a stand-in.
type Disks interface {
	// Devices are the disk device paths the layout uses (after overrides).
	Devices() []string
	// Apply runs a disko mode under root through r, calling step as each
	// step of it completes.
	Apply(ctx context.Context, r remote.Runner, mode disko.Mode, root string, step func(done, total int, name string)) error
	// Plan returns the commands Apply would run, for --dry-run.
	Plan(mode disko.Mode, root string) ([]string, error)
}

// DiskChecker is a Disks that checks, before anything is touched, that
// the installer can carry out mode: its tools and their versions, the
// keys, and the disks as they are (see disko.Preflight and
// disko.Inspect). It returns the disks destroy would erase, each with
// what it takes down there first (an old install's arrays, volume
// groups, LUKS mappings), and refuses what is also built on a disk the
// layout does not name.
type DiskChecker interface {
	Preflight(ctx context.Context, r remote.Runner, mode disko.Mode, root string) ([]disko.Target, error)
}

// DiskSizer is a Disks that knows the smallest disk each device's layout
// fits on; preflight refuses smaller disks before anything is written.
type DiskSizer interface {
	MinSize(dev string) int64
}

// DiskKeeper is a Disks that keeps some of its disks as they are
// (--keep): preflight does not refuse those for being in use, since udev
// may well have assembled their arrays already.
type DiskKeeper interface {
	Kept(dev string) bool
}

// layOut is the disko phase's mode.
func (o *DiskOptions) layOut() disko.Mode {
	if o.Mode == (disko.Mode{}) {
		return disko.ModeDestroyFormatMount
	}
	return o.Mode
}

// DiskOptions say how a host's disko layout meets the machine's disks.
type DiskOptions struct {
	Devices map[string]string // the layout's disk NAME -> device PATH (--device)
	// KeyFiles are the disk keys: a LUKS device's NAME, or the path its
	// passwordFile or settings.keyFile names on the installer
	// (nixos-anywhere's --disk-encryption-keys REMOTE_PATH LOCAL_PATH), or
	// a ZFS encryption root's NAME (POOL/DATASET) -> the local key FILE.
	// The key reaches cryptsetup or zfs on stdin only.
	KeyFiles map[string]string
	Yes      bool // erase the layout's disks without asking
	// Keep names the layout's disks that are never wiped, partitioned or
	// formatted (--keep): checked against the layout, brought up and
	// mounted (disko.Options.Keep).
	Keep []string
	// Mode is the disko phase's mode (--disko-mode); the zero Mode is
	// destroy,format,mount.
	Mode disko.Mode
	// Confirm asks the operator to allow erasing the disks, each with its
	// name and device path; nil means no terminal: erasing then needs Yes.
	Confirm func(disks []disko.Target) bool
}

// diskoLayout is a host's disko layout, with the operator's device
// overrides and LUKS keys: the disko package behind Disks.
type diskoLayout struct {
	spec    *disko.Spec
	host    string // the host's networking.hostName: a pool it imported last may be imported
	devices map[string]string
	keep    []string
	keys    map[string][]byte
	yes     bool
	confirm func([]disko.Target) bool
	log     *log.Logger
	tools   *disko.Tools // what the installer has, from Preflight
}

// newDiskoLayout reads the spec's disko layout. A device override must
// name one of the layout's disks: an unknown name (a typo) would
// otherwise leave the layout's own device to be erased.
func newDiskoLayout(spec *Spec, o DiskOptions, l *log.Logger) (*diskoLayout, error) {
	s, err := disko.Parse(spec.Disko)
	if err != nil {
		return nil, fmt.Errorf("host %s: disko layout: %w", spec.Name, err)
	}
	if err := disko.ValidateDevices(s, o.Devices); err != nil {
		return nil, &OptionError{fmt.Errorf("host %s: %w", spec.Name, err)}
	}
	if err := disko.ValidateKeep(s, o.Keep); err != nil {
		return nil, &OptionError{fmt.Errorf("host %s: %w", spec.Name, err)}
	}
	keys := map[string][]byte{}
	luks := luksNodes(s)
	for _, k := range slices.Sorted(maps.Keys(o.KeyFiles)) {
		names := zfsKeyFor(k, s)
		if names == nil {
			if names, err = luksFor(k, luks, spec.Name); err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(o.KeyFiles[k])
		if err != nil {
			return nil, fmt.Errorf("disk key for %s: %w", k, err)
		}
		for _, n := range names {
			if _, dup := keys[n]; dup {
				return nil, badOption("two disk keys for the LUKS device %s (one given for %s)\nhint: give each device one key, by its name or by the path its layout reads", n, k)
			}
			keys[n] = b
		}
	}
	return &diskoLayout{spec: s, host: spec.HostName, devices: o.Devices, keep: o.Keep, keys: keys, yes: o.Yes, confirm: o.Confirm, log: l}, nil
}

func (d *diskoLayout) Devices() []string {
	var out []string
	for _, n := range d.spec.Disks {
		out = append(out, d.device(n))
	}
	return out
}

// device is the path a disk of the layout is laid out on.
func (d *diskoLayout) device(n *disko.Node) string {
	if dev, ok := d.devices[n.Name]; ok {
		return dev
	}
	return n.Device
}

// Kept reports whether the disk at dev is kept (--keep).
func (d *diskoLayout) Kept(dev string) bool {
	for _, n := range d.spec.Disks {
		if d.device(n) == dev && slices.Contains(d.keep, n.Name) {
			return true
		}
	}
	return false
}

// MinSize is the smallest disk that holds the layout of the disk at dev.
func (d *diskoLayout) MinSize(dev string) int64 {
	for _, n := range d.spec.Disks {
		if d.device(n) == dev {
			return disko.Needs(n)
		}
	}
	return 0
}

// Apply runs mode, calling step as each of its steps starts, with the
// step's number (1-based: the step it is at), the total and its name.
func (d *diskoLayout) Apply(ctx context.Context, r remote.Runner, mode disko.Mode, root string, step func(done, total int, name string)) error {
	opt := d.options(mode, root)
	if step != nil {
		opt.Progress = func(done, total int, name string) { step(done+1, total, name) }
	}
	return disko.Apply(ctx, r, d.spec, opt)
}

// Preflight checks, without changing anything, that the installer has
// the tools mode needs (at the versions it needs), that every LUKS
// device has its key, and the disks as they are (disko.Inspect); the
// tools it found serve Apply.
func (d *diskoLayout) Preflight(ctx context.Context, r remote.Runner, mode disko.Mode, root string) ([]disko.Target, error) {
	tools, err := disko.Preflight(ctx, r, d.spec, d.options(mode, root))
	if err != nil {
		return nil, err
	}
	d.tools = tools
	return disko.Inspect(ctx, r, d.spec, d.options(mode, root))
}

func (d *diskoLayout) options(mode disko.Mode, root string) disko.ApplyOptions {
	return disko.ApplyOptions{Mode: mode, Plan: disko.Options{Root: root, Devices: d.devices, Keep: d.keep},
		Yes: d.yes, Confirm: d.confirm, Keys: d.keys, HostName: d.host, Log: d.log, Tools: d.tools}
}

func (d *diskoLayout) Plan(mode disko.Mode, root string) ([]string, error) {
	steps, err := disko.BuildPlan(d.spec, mode, disko.Options{Root: root, Devices: d.devices, Keep: d.keep})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range steps {
		for _, c := range st.Cmds {
			out = append(out, remote.ShellJoin(c))
		}
	}
	return out, nil
}

// luksNodes are the layout's LUKS devices, in layout order.
func luksNodes(s *disko.Spec) []*disko.Node {
	var out []*disko.Node
	var walk func(n *disko.Node)
	walk = func(n *disko.Node) {
		if n == nil {
			return
		}
		if n.Type == "luks" {
			out = append(out, n)
		}
		walk(n.Content)
		for _, p := range n.Partitions {
			walk(p.Content)
		}
		for _, p := range n.TableParts {
			walk(p.Content)
		}
		for _, lv := range n.LVs {
			walk(lv.Content)
		}
	}
	for _, n := range s.Top() {
		walk(n)
	}
	return out
}

// zfsKeyFor names the ZFS encryption roots a disk key is for: the one
// called key (POOL/DATASET), else every one whose keylocation is
// file://KEY; nil when none is.
func zfsKeyFor(key string, s *disko.Spec) []string {
	var names []string
	for _, z := range s.Zpools {
		for _, ds := range z.Datasets {
			switch {
			case !ds.EncryptionRoot():
			case ds.Name == key:
				return []string{ds.Name}
			case strings.HasPrefix(key, "/") && ds.KeyLocation() == "file://"+key:
				names = append(names, ds.Name)
			}
		}
	}
	return names
}

// luksFor names the LUKS devices a disk key is for: the device called
// key, else (nixos-anywhere's REMOTE_PATH) every device whose
// passwordFile or settings.keyFile is the path key. A key no device
// takes is refused, naming the devices there are.
func luksFor(key string, luks []*disko.Node, host string) ([]string, error) {
	var names, have []string
	for _, n := range luks {
		if n.Name == key {
			return []string{n.Name}, nil
		}
		if strings.HasPrefix(key, "/") && (n.PasswordFile == key || n.KeyFile == key) {
			names = append(names, n.Name)
		}
		var reads []string
		for _, f := range []struct{ what, path string }{{"passwordFile", n.PasswordFile}, {"settings.keyFile", n.KeyFile}} {
			if f.path != "" {
				reads = append(reads, f.what+" "+f.path)
			}
		}
		if len(reads) == 0 {
			reads = []string{"no key file: name it"}
		}
		have = append(have, fmt.Sprintf("%s (%s)", n.Name, strings.Join(reads, ", ")))
	}
	if len(names) > 0 {
		return names, nil
	}
	hint := "its LUKS devices are " + strings.Join(have, ", ")
	if len(have) == 0 {
		hint = "its layout has no LUKS device or ZFS encryption root of that name: drop the key"
	}
	if strings.HasPrefix(key, "/") {
		return nil, badOption("disk key for %s: no LUKS device of host %s's layout reads %s (as its passwordFile or settings.keyFile)\nhint: %s", key, host, key, hint)
	}
	return nil, badOption("disk key for %s: host %s's layout has no LUKS device %q\nhint: %s", key, host, key, hint)
}
