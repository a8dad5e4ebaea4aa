package disko

import (
	"context"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Mode Mode
	Plan Options
	Wipe bool // format: replace what does not match instead of failing
	Yes  bool // destroy without asking
	// Confirm asks the user to allow erasing the disks, each shown with
	// its device path; nil means no terminal: destroy needs Yes.
	Confirm func(disks []Target) bool
	// Progress, when set, is called as each step starts: done steps of
	// total so far, and the step ("format mkfs disk.main...").
	Progress func(done, total int, step string)
	Keys     map[string][]byte // luks name or zfs encryption root -> key bytes (from --disk-key)
	// HostName is the host the layout is for (networking.hostName): a
	// pool it imported last and did not export (a reinstall) may be
	// imported; one another host imported is refused as in use there.
	HostName string
	// Tools are the installer's programs and versions, when the caller
	// has asked already (QueryTools); nil: Apply asks, in one round trip.
	Tools *Tools
	Log   *log.Logger
}

type applier struct {
	r    remote.Runner
	opt  ApplyOptions
	log  *log.Logger
	udev bool
	// ownMounts are the layout's mount targets under the root.
	ownMounts map[string]bool
	// keep are the disks destroy leaves alone (destroy = false).
	keep map[string]bool
	// mdDevs maps the plan's /dev/md/NAME paths (and their partitions')
	// to the array and partition number, for when udev made no link.
	mdDevs map[string]mdDev
	// disks are the layout's disks' kernel nodes, for the state report;
	// diskNames, each one's name in the layout.
	disks     []string
	diskNames map[string]string
	// targets are the kernel names of the devices on the disks destroy
	// erases (the disks, their partitions and what is built on them);
	// nil outside destroy.
	targets map[string]bool
}

type mdDev struct {
	name string
	part int // 0 for the array itself
}

// Apply makes the layout real on r's machine: it resolves the disks, checks
// the tools, the keys and the disks, and runs and verifies the plan for
// opt.Mode. Everything that can be refused is refused before the first
// change ([ErrRefused]); a step that fails after that is a [*StepError].
func Apply(ctx context.Context, r remote.Runner, s *Spec, opt ApplyOptions) error {
	a, steps, devs, err := prepare(ctx, r, s, opt)
	if err != nil {
		return err
	}
	opt = a.opt
	erased, err := a.review(ctx, s, steps, devs)
	if err != nil {
		return err
	}
	// Kept devices last, since checking them brings them up: each is
	// checked against the layout and taken down again on a refusal.
	takeDown, err := a.keepAll(ctx, steps)
	if err != nil {
		return err
	}
	if len(erased) > 0 && !opt.Yes {
		if opt.Confirm == nil {
			takeDown()
			names := make([]string, len(erased))
			for i, t := range erased {
				names[i] = t.Name
			}
			return withHint(fmt.Errorf("destroy erases disks %s: %w", strings.Join(names, ", "), ErrRefused), "pass --yes, or run at a terminal to confirm")
		}
		if !opt.Confirm(erased) {
			takeDown()
			return fmt.Errorf("destroy not confirmed: %w", ErrRefused)
		}
	}
	for i := range steps {
		if opt.Progress != nil {
			opt.Progress(i, len(steps), steps[i].String())
		}
		if err := a.runStep(ctx, &steps[i]); err != nil {
			return err
		}
	}
	return nil
}

// Inspect does, without changing anything, every check Apply does before
// it asks to confirm, on the disks as they are, and returns the disks
// destroy would erase, each with what it would take down there first
// ([Target.TakeDown]): for an install's preflight and its dry run.
func Inspect(ctx context.Context, r remote.Runner, s *Spec, opt ApplyOptions) ([]Target, error) {
	a, steps, devs, err := prepare(ctx, r, s, opt)
	if err != nil {
		return nil, err
	}
	return a.review(ctx, s, steps, devs)
}

// review refuses what Apply must not do, reading the disks only: which
// disks get written to (destroy: those it erases, and the others where
// something must be created; format: those where something must be
// created), mismatches with what is there, disks in use or too small,
// what is built on an erased disk and on another, layouts that do not
// fit. It returns the disks destroy erases.
func (a *applier) review(ctx context.Context, s *Spec, steps []Step, devs map[string]string) ([]Target, error) {
	opt := a.opt
	a.ownMounts = map[string]bool{}
	for _, st := range steps {
		if _, ok := st.Action.(*Umount); ok {
			a.ownMounts[st.Mountpoint] = true
		}
	}
	// ZFS pools first: a foreign pool on a disk is the most telling reason
	// to stop, before any other mismatch the disk shows.
	if err := a.checkPools(ctx, s, steps); err != nil {
		return nil, err
	}
	write := map[string]bool{}
	if opt.Mode.Destroy {
		for _, d := range s.Disks {
			write[d.Name] = a.erases(d)
		}
	}
	if opt.Mode.Format {
		fresh := map[string]bool{} // devices that will be created
		for i := range steps {
			st := &steps[i]
			if st.Phase != PhaseFormat || st.Disk == "" || fresh[st.Device] || (opt.Mode.Destroy && !a.keep[st.Disk]) {
				continue
			}
			if _, ok := st.Action.(interface{ isPassive() }); ok {
				continue
			}
			done, err := st.Action.check(ctx, a, st)
			if err != nil {
				return nil, refused(err)
			}
			if f, ok := st.Action.(interface{ fresh(string) []string }); ok && !done {
				for _, n := range f.fresh(st.Device) {
					fresh[n] = true
				}
			}
			write[st.Disk] = write[st.Disk] || !done
		}
	}
	if opt.Mode.Destroy {
		if err := a.findTargets(ctx, s, devs); err != nil {
			return nil, err
		}
	}
	var erased []Target
	seen := map[string]bool{} // what is named already (an array on two disks)
	for _, d := range s.Disks {
		if !write[d.Name] {
			continue
		}
		size, down, err := a.safe(ctx, d, devs[d.Name])
		if err != nil {
			return nil, err
		}
		if a.erases(d) {
			t := Target{Name: d.Name, Device: DiskDevice(d, opt.Plan), Node: devs[d.Name], Size: size}
			for _, w := range down {
				if !seen[w] {
					seen[w] = true
					t.TakeDown = append(t.TakeDown, w)
				}
			}
			erased = append(erased, t)
		}
	}
	if opt.Mode.Format {
		sizes := map[string]int64{}
		for _, d := range s.Disks {
			if out, err := a.out(ctx, "blockdev", "--getsize64", devs[d.Name]); err == nil {
				sizes[d.Name], _ = strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			}
		}
		if err := arraysFit(s, sizes); err != nil {
			return nil, fmt.Errorf("%w: %w: %w", err, ErrTooSmall, ErrRefused)
		}
		if err := filesystemsFit(s, sizes, opt.Tools); err != nil {
			return nil, fmt.Errorf("%w: %w: %w", err, ErrTooSmall, ErrRefused)
		}
	}
	return erased, nil
}

// Preflight does, without changing anything, all of Apply's checks that
// need no look at the disks' contents: the mode, the --device map, every
// disk present and a block device, the plan, the installer's tools and
// their versions, and the keys; and the ZFS pool checks, which read the
// disks' labels (a foreign pool, one in use elsewhere, a kept pool and its
// keys, tested on a read-only import exported again). It returns the
// tools, to pass to Apply ([ApplyOptions.Tools]) so it does not ask
// again. An install calls it in its preflight, before anything is staged.
func Preflight(ctx context.Context, r remote.Runner, s *Spec, opt ApplyOptions) (*Tools, error) {
	a, steps, _, err := prepare(ctx, r, s, opt)
	if err != nil {
		return nil, err
	}
	if err := a.checkPools(ctx, s, steps); err != nil {
		return nil, err
	}
	return a.opt.Tools, nil
}

// prepare resolves the disks, builds the plan and checks it against the
// installer's tools and the keys.
func prepare(ctx context.Context, r remote.Runner, s *Spec, opt ApplyOptions) (*applier, []Step, map[string]string, error) {
	if opt.Plan.Root == "" {
		opt.Plan.Root = "/mnt"
	}
	if err := opt.Mode.Validate(); err != nil {
		return nil, nil, nil, refused(fmt.Errorf("mode %s: %w", opt.Mode, err))
	}
	a := &applier{r: r, opt: opt, log: opt.Log, keep: map[string]bool{}, mdDevs: map[string]mdDev{}, diskNames: map[string]string{}}
	if a.log == nil {
		a.log = log.New(nil)
		a.log.SetLevel(log.FatalLevel + 1)
	}
	a.log = a.log.With("host", r.Host())
	if err := ValidateDevices(s, opt.Plan.Devices); err != nil {
		return nil, nil, nil, err
	}
	// Resolve every disk to its kernel node (by-id links -> /dev/sdX).
	devs := map[string]string{}
	for _, d := range s.Disks {
		dev := DiskDevice(d, opt.Plan)
		out, err := a.out(ctx, "readlink", "-e", dev)
		if err != nil {
			return nil, nil, nil, withHint(fmt.Errorf("disk %q: %s: %w: %w", d.Name, dev, ErrMissingDevice, ErrRefused), "check the device path or pass --device %s=/dev/...", d.Name)
		}
		real := strings.TrimSpace(string(out))
		if _, err := a.out(ctx, "test", "-b", real); err != nil {
			return nil, nil, nil, fmt.Errorf("disk %q: %s is not a block device: %w: %w", d.Name, dev, ErrMissingDevice, ErrRefused)
		}
		devs[d.Name] = real
		a.disks = append(a.disks, real)
		a.diskNames[real] = d.Name
		if !d.Destroy {
			a.keep[d.Name] = true
		}
	}
	for _, md := range s.MDs {
		a.mdDevs[md.Device] = mdDev{name: md.Name}
		if md.Content != nil {
			for _, pt := range md.Content.Partitions {
				a.mdDevs[PartNode(md.Device, pt.Index)] = mdDev{name: md.Name, part: pt.Index}
			}
		}
	}
	popt := opt.Plan
	popt.Devices = devs
	steps, err := BuildPlan(s, opt.Mode, popt)
	if err != nil {
		return nil, nil, nil, err
	}
	if a.opt.Tools == nil {
		if a.opt.Tools, err = QueryTools(ctx, r); err != nil {
			return nil, nil, nil, refused(fmt.Errorf("ask the installer for its tools: %w", err))
		}
	}
	a.udev = a.opt.Tools.Udev
	if err := Check(s, steps, a.opt, a.opt.Tools); err != nil {
		return nil, nil, nil, err
	}
	return a, steps, devs, nil
}

// wipe reports whether st may replace what it finds: --wipe, or destroy
// on a disk that destroy erases.
func (a *applier) wipe(st *Step) bool {
	if st.Kept {
		return false // a kept device is never written
	}
	return a.opt.Wipe || (a.opt.Mode.Destroy && !a.keep[st.Disk])
}

// findTargets records the kernel names of every device on the disks
// destroy erases: the disks, their partitions, and what is built on them.
func (a *applier) findTargets(ctx context.Context, s *Spec, devs map[string]string) error {
	a.targets = map[string]bool{}
	for _, d := range s.Disks {
		if !a.erases(d) {
			continue
		}
		tree, _, err := a.tree(ctx, devs[d.Name])
		if err != nil {
			return refused(fmt.Errorf("disk %q (%s): cannot read /sys/class/block/%s: %v: %w", d.Name, devs[d.Name], path.Base(devs[d.Name]), err, ErrMissingDevice))
		}
		for _, b := range tree {
			a.targets[b.name] = true
		}
	}
	return nil
}

// erases reports whether the mode erases disk d: destroy, on a disk the
// layout lets it destroy and --keep does not name.
func (a *applier) erases(d *Node) bool {
	return a.opt.Mode.Destroy && d.Destroy && !slices.Contains(a.opt.Plan.Keep, d.Name)
}

// safe refuses a disk that is in use or too small, and returns its size
// and, for a disk destroy erases, what it takes down there (see
// teardown). In use: mounted (but for the layout's own mounts, which
// destroy unmounts), swapping, or holding an md array or dm device.
// Destroy takes down the arrays and dm devices on a disk it erases (as
// disko's disk-deactivate does), unless one of them is mounted or
// swapping, or is also built on a disk outside the layout.
func (a *applier) safe(ctx context.Context, d *Node, dev string) (int64, []string, error) {
	refuse := func(sentinel error, hint, format string, args ...any) (int64, []string, error) {
		err := fmt.Errorf("disk %q (%s): %s: %w: %w", d.Name, dev, fmt.Sprintf(format, args...), sentinel, ErrRefused)
		if hint != "" {
			err = withHint(err, "%s", hint)
		}
		return 0, nil, err
	}
	tree, pvs, err := a.tree(ctx, dev)
	if err != nil {
		return refuse(ErrMissingDevice, "", "cannot read /sys/class/block/%s: %v", path.Base(dev), err)
	}
	ms, err := a.mounts(ctx)
	if err != nil {
		return 0, nil, err
	}
	for _, m := range ms {
		for _, b := range tree {
			if b.devNum != m.devNum {
				continue
			}
			if a.opt.Mode.Destroy && a.ownMounts[m.target] {
				continue // destroy unmounts the layout's own mounts first
			}
			if m.target == "/" {
				return refuse(ErrInUse, "", "/dev/%s holds the running root filesystem", b.name)
			}
			return refuse(ErrInUse, "unmount it first, or run with --mode unmount", "/dev/%s is mounted on %s", b.name, m.target)
		}
	}
	swaps, err := a.out(ctx, "cat", "/proc/swaps")
	if err != nil {
		return 0, nil, err
	}
	for _, l := range strings.Split(string(swaps), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		for _, b := range tree {
			if f[0] == "/dev/"+b.name || (b.dmName != "" && f[0] == "/dev/mapper/"+b.dmName) {
				return refuse(ErrInUse, "swapoff it first", "/dev/%s is in use as swap", b.name)
			}
		}
	}
	var held []string
	for _, b := range tree {
		if b.depth > 0 {
			name := b.name
			if b.dmName != "" {
				name += " (" + b.dmName + ")"
			}
			held = append(held, name)
		}
	}
	erase := a.erases(d)
	if len(held) > 0 && !erase {
		return refuse(ErrInUse, "stop them first (mdadm --stop, vgchange -a n, cryptsetup close), or erase the disk with --mode destroy,format,mount", "%s hold it (md, dm or lvm)", strings.Join(held, ", "))
	}
	var down []string
	if erase {
		if err := outsiders(tree, pvs, a.targets); err != nil {
			return refuse(ErrInUse, "take it down yourself if you mean to break it up, or add that disk to the layout: destroy erases only the layout's disks", "%v", err)
		}
		if missing := teardownTools(tree, a.have); len(missing) > 0 {
			return refuse(ErrTool, "add those packages to the installer image", "taking down what is built on it needs %s, which the installer lacks", strings.Join(missing, ", "))
		}
		for _, td := range teardown(tree, a.have) {
			if td.what != "" {
				down = append(down, escapeRemote(td.what))
			}
		}
		if len(held) > 0 {
			a.log.Warn("destroy takes down what is built on the disk", "disk", d.Name, "devices", strings.Join(held, ", "))
		}
	}
	out, err := a.out(ctx, "blockdev", "--getsize64", dev)
	if err != nil {
		return refuse(ErrMissingDevice, "", "cannot read its size: %v", err)
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if need := Needs(d); size < need {
		return refuse(ErrTooSmall, "", "%d bytes, the layout needs at least %d", size, need)
	}
	if d.Content != nil && d.Content.Type == "gpt" {
		if _, err := fits(d.Content, size); err != nil {
			return refuse(ErrTooSmall, "", "%d bytes: %v", size, err)
		}
	}
	return size, down, nil
}

// Needs is the smallest disk size that holds d's layout: its sized
// partitions, 1 MiB alignment at the start, 1 MiB for the backup GPT and
// 1 MiB for each partition without a size.
func Needs(d *Node) int64 {
	if d.Content == nil || d.Content.Type != "gpt" {
		return 0
	}
	need := int64(2 << 20)
	for _, pt := range d.Content.Partitions {
		b := pt.Bytes()
		if b <= 0 {
			b = 1 << 20
		}
		if need > math.MaxInt64-b {
			return math.MaxInt64 // saturate: no disk holds it, so it is refused
		}
		need += b
	}
	return need
}
