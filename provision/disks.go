package provision

import (
	"context"
	"fmt"
	"os"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
)

// The disko modes the pipeline uses.
var (
	layOut  = disko.Mode{Destroy: true, Format: true, Mount: true} // the disko phase
	mountIt = disko.Mode{Mount: true}                              // a resumed run, after an interrupt unmounted
	unmount = disko.Mode{Unmount: true}                            // before the reboot, and after an interrupt
)

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

// DiskSizer is a Disks that knows the smallest disk each device's layout
// fits on; preflight refuses smaller disks before anything is written.
type DiskSizer interface {
	MinSize(dev string) int64
}

// DiskOptions say how a host's disko layout meets the machine's disks.
type DiskOptions struct {
	Devices  map[string]string // the layout's disk NAME -> device PATH (--device)
	KeyFiles map[string]string // LUKS device NAME -> local key FILE (--disk-key)
	Yes      bool              // erase the layout's disks without asking
	// Confirm asks the operator to allow erasing the disks, each with its
	// name and device path; nil means no terminal: erasing then needs Yes.
	Confirm func(disks []disko.Target) bool
}

// diskoLayout is a host's disko layout, with the operator's device
// overrides and LUKS keys: the disko package behind Disks.
type diskoLayout struct {
	spec    *disko.Spec
	devices map[string]string
	keys    map[string][]byte
	yes     bool
	confirm func([]disko.Target) bool
	log     *log.Logger
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
	keys := map[string][]byte{}
	for name, f := range o.KeyFiles {
		if keys[name], err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("--disk-key %s: %w", name, err)
		}
	}
	return &diskoLayout{spec: s, devices: o.Devices, keys: keys, yes: o.Yes, confirm: o.Confirm, log: l}, nil
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
	opt := disko.ApplyOptions{Mode: mode, Plan: disko.Options{Root: root, Devices: d.devices},
		Yes: d.yes, Confirm: d.confirm, Keys: d.keys, Log: d.log}
	if step != nil {
		opt.Progress = func(done, total int, name string) { step(done+1, total, name) }
	}
	return disko.Apply(ctx, r, d.spec, opt)
}

func (d *diskoLayout) Plan(mode disko.Mode, root string) ([]string, error) {
	steps, err := disko.BuildPlan(d.spec, mode, disko.Options{Root: root, Devices: d.devices})
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
