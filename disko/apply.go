package disko

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/charmbracelet/log"
	"github.com/fleetnix/fleet/internal/mountinfo"
	"github.com/fleetnix/fleet/remote"
)

// Errors callers branch on. Refusals before any change wrap ErrRefused.
var (
	ErrRefused       = errors.New("no changes made")
	ErrMissingDevice = errors.New("device not found")
	ErrInUse         = errors.New("disk in use")
	ErrTooSmall      = errors.New("disk too small")
	ErrMismatch      = errors.New("existing layout does not match")
	ErrVerify        = errors.New("verification failed")
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
	Keys    map[string][]byte // luks name -> key bytes (from --disk-key)
	Log     *log.Logger
}

type applier struct {
	r    remote.Runner
	opt  ApplyOptions
	log  *log.Logger
	udev bool
	// ownMounts are the layout's mount targets under the root.
	ownMounts map[string]bool
}

// Apply makes the layout real on r's machine: it resolves the disks, checks
// them, and runs and verifies the plan for opt.Mode.
func Apply(ctx context.Context, r remote.Runner, s *Spec, opt ApplyOptions) error {
	if opt.Plan.Root == "" {
		opt.Plan.Root = "/mnt"
	}
	if opt.Mode.Destroy {
		// Everything is erased first: leftovers of an older layout that
		// surface at new offsets are replaced, not reported.
		opt.Wipe = true
	}
	a := &applier{r: r, opt: opt, log: opt.Log}
	if a.log == nil {
		a.log = log.New(nil)
		a.log.SetLevel(log.FatalLevel + 1)
	}
	a.log = a.log.With("host", r.Host())
	if err := ValidateDevices(s, opt.Plan.Devices); err != nil {
		return err
	}
	// Resolve every disk to its kernel node (by-id links -> /dev/sdX).
	devs := map[string]string{}
	for _, d := range s.Disks {
		dev := DiskDevice(d, opt.Plan)
		out, err := a.out(ctx, "readlink", "-e", dev)
		if err != nil {
			return fmt.Errorf("disk %q: %s: %w: %w (hint: check the device path or pass --device %s=/dev/...)", d.Name, dev, ErrMissingDevice, ErrRefused, d.Name)
		}
		real := strings.TrimSpace(string(out))
		if _, err := a.out(ctx, "test", "-b", real); err != nil {
			return fmt.Errorf("disk %q: %s is not a block device: %w: %w", d.Name, dev, ErrMissingDevice, ErrRefused)
		}
		devs[d.Name] = real
	}
	popt := opt.Plan
	popt.Devices = devs
	steps, err := BuildPlan(s, opt.Mode, popt)
	if err != nil {
		return err
	}
	a.ownMounts = map[string]bool{}
	for _, st := range steps {
		if st.Action == "umount" {
			a.ownMounts[st.Mountpoint] = true
		}
	}
	if _, err := a.out(ctx, "test", "-d", "/run/udev"); err == nil {
		if _, err := a.out(ctx, "sh", "-c", "command -v udevadm"); err == nil {
			a.udev = true
		}
	}
	// Which disks get written to? destroy: all; format: those where
	// something must be created. Mismatches fail here, before any change.
	write := map[string]bool{}
	if opt.Mode.Destroy {
		for _, d := range s.Disks {
			write[d.Name] = true
		}
	} else if opt.Mode.Format {
		fresh := map[string]bool{} // partitions that will be created
		for _, st := range steps {
			if st.Phase != "format" || st.Disk == "" || fresh[st.Device] {
				continue
			}
			need, err := a.needs(ctx, st)
			if err != nil {
				return fmt.Errorf("%w: %w", err, ErrRefused)
			}
			if need && st.Action == "partition" {
				w, _ := a.gptWork(ctx, st)
				for _, pt := range w.create {
					fresh[PartNode(st.Device, pt.Index)] = true
				}
			}
			write[st.Disk] = write[st.Disk] || need
		}
	}
	var names []string
	var targets []Target
	for _, d := range s.Disks {
		if !write[d.Name] {
			continue
		}
		names = append(names, d.Name)
		size, err := a.safe(ctx, d, devs[d.Name], s)
		if err != nil {
			return err
		}
		targets = append(targets, Target{Name: d.Name, Device: DiskDevice(d, opt.Plan), Node: devs[d.Name], Size: size})
	}
	if opt.Mode.Destroy && !opt.Yes {
		if opt.Confirm == nil {
			return fmt.Errorf("destroy erases disks %s: %w (hint: pass --yes, or run at a terminal to confirm)", strings.Join(names, ", "), ErrRefused)
		}
		if !opt.Confirm(targets) {
			return fmt.Errorf("destroy not confirmed: %w", ErrRefused)
		}
	}
	for i := range steps {
		if err := a.step(ctx, &steps[i]); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) out(ctx context.Context, args ...string) ([]byte, error) {
	res, err := a.r.Run(ctx, remote.Cmd{Args: args})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// blkType is blkid's TYPE (or PTTYPE for whole disks) of dev, "" for nothing.
func (a *applier) blkType(ctx context.Context, dev string, pt bool) (string, error) {
	out, err := a.out(ctx, "blkid", "-p", "-o", "export", dev)
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Code == 2 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	if pt && kv["PTTYPE"] != "" {
		return kv["PTTYPE"], nil
	}
	return kv["TYPE"], nil
}

func (a *applier) exists(ctx context.Context, dev string) bool {
	_, err := a.out(ctx, "test", "-b", dev)
	return err == nil
}

// gone reports whether dev is positively absent (not merely unreadable:
// a dead connection says nothing about the disk).
func (a *applier) gone(ctx context.Context, dev string) bool {
	out, err := a.out(ctx, "sh", "-c", `if test -b "$1"; then echo present; else echo gone; fi`, "fleet-disk-check", dev)
	return err == nil && strings.TrimSpace(string(out)) == "gone"
}

// needs reports whether a format step would have to write, and fails on a
// mismatch (unless Wipe).
func (a *applier) needs(ctx context.Context, st Step) (bool, error) {
	switch st.Action {
	case "partition":
		w, err := a.gptWork(ctx, st)
		if err != nil {
			return false, err
		}
		return w.clear || len(w.create) > 0, nil
	case "mkfs", "mkswap", "luksFormat", "pvcreate":
		if !a.exists(ctx, st.Device) {
			return true, nil
		}
		t, err := a.blkType(ctx, st.Device, false)
		if err != nil {
			return false, err
		}
		if t == st.FSType {
			return false, nil
		}
		if t != "" && !a.opt.Wipe {
			return false, fmt.Errorf("%s: %s holds %s, the layout wants %s: %w (hint: pass --wipe to replace it)", st.Node, st.Device, t, st.FSType, ErrMismatch)
		}
		return true, nil
	}
	return false, nil
}

// partInfo is one partition as sgdisk -i reports it.
type partInfo struct {
	TypeGUID    string
	First, Last int64 // sectors
	Name        string
}

func (a *applier) partInfo(ctx context.Context, disk string, n int) (*partInfo, error) {
	out, err := a.out(ctx, "sgdisk", "-i", strconv.Itoa(n), disk)
	if err != nil {
		return nil, err
	}
	pi := &partInfo{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Partition GUID code":
			pi.TypeGUID, _, _ = strings.Cut(v, " ")
		case "First sector":
			f, _, _ := strings.Cut(v, " ")
			pi.First, _ = strconv.ParseInt(f, 10, 64)
		case "Last sector":
			f, _, _ := strings.Cut(v, " ")
			pi.Last, _ = strconv.ParseInt(f, 10, 64)
		case "Partition name":
			pi.Name = strings.Trim(v, "'")
		}
	}
	if pi.TypeGUID == "" || strings.HasPrefix(pi.TypeGUID, "00000000") {
		return nil, nil // no such partition
	}
	return pi, nil
}

// typeGUIDs maps sgdisk codes to GPT type GUIDs for verification.
var typeGUIDs = map[string]string{
	"EF00": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
	"EF02": "21686148-6449-6E6F-744E-656564454649",
	"8300": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
	"8200": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
	"FD00": "A19D880F-05FC-4D3B-A006-743F0F84911E",
	"8E00": "E6D6D379-F507-44C2-A23C-238F2A3DF928",
	"8309": "CA7D7CCB-63ED-4C53-861C-1742536059CC",
	"0700": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
	"8304": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
}

// partDiff names how an existing partition differs from pt, "" if it matches.
func partDiff(pi *partInfo, pt *Partition) string {
	var d []string
	if pi.Name != pt.Label {
		d = append(d, fmt.Sprintf("name %q, want %q", pi.Name, pt.Label))
	}
	want := pt.TypeCode
	if g, ok := typeGUIDs[want]; ok {
		want = g
	}
	if len(want) == 36 && !strings.EqualFold(pi.TypeGUID, want) {
		d = append(d, fmt.Sprintf("type %s, want %s (%s)", pi.TypeGUID, want, pt.TypeCode))
	}
	if b := pt.Bytes(); b > 0 {
		got := (pi.Last - pi.First + 1) * 512
		// --align-end rounds the end down to 1 MiB.
		if got > b || got < b-(1<<20) {
			d = append(d, fmt.Sprintf("size %d bytes, want %s (%d bytes)", got, pt.Size, b))
		}
	}
	if pi.First%2048 != 0 {
		d = append(d, fmt.Sprintf("start sector %d not 1 MiB aligned", pi.First))
	}
	return strings.Join(d, "; ")
}

// gptWork is what a partition step must do on the disk.
type gptWork struct {
	clear   bool         // write a new empty table first
	foreign string       // what blkid finds instead of a gpt
	create  []*Partition // partitions to (re)create
	del     []int        // mismatching partitions to delete first (--wipe)
}

func (a *applier) gptWork(ctx context.Context, st Step) (*gptWork, error) {
	w := &gptWork{}
	t, err := a.blkType(ctx, st.Device, true)
	if err != nil {
		return nil, err
	}
	if t != "gpt" {
		if t != "" && !a.opt.Wipe {
			return nil, fmt.Errorf("%s: %s holds %q, the layout wants a gpt partition table: %w (hint: pass --wipe to replace it)", st.Node, st.Device, t, ErrMismatch)
		}
		w.clear, w.foreign, w.create = true, t, st.Parts
		return w, nil
	}
	for _, pt := range st.Parts {
		pi, err := a.partInfo(ctx, st.Device, pt.Index)
		if err != nil || pi == nil {
			w.create = append(w.create, pt)
			continue
		}
		if d := partDiff(pi, pt); d != "" {
			if !a.opt.Wipe {
				return nil, fmt.Errorf("%s: partition %d of %s has %s: %w (hint: pass --wipe to replace it)", pt.Path, pt.Index, st.Device, d, ErrMismatch)
			}
			w.del = append(w.del, pt.Index)
			w.create = append(w.create, pt)
		}
	}
	return w, nil
}

// devNums lists the major:minor of a disk and its partitions, and holders.
func (a *applier) devNums(ctx context.Context, disk string) (nums map[string]string, holders []string, err error) {
	base := path.Base(disk)
	script := `cd /sys/class/block/"$1" || exit 1
echo "dev $1 $(cat dev)"
for h in holders/*; do [ -e "$h" ] && echo "holder $1 ${h#holders/}"; done
for p in "$1"*; do
  [ -e "$p/partition" ] || continue
  echo "dev $p $(cat "$p/dev")"
  for h in "$p"/holders/*; do [ -e "$h" ] && echo "holder $p ${h##*/}"; done
done
exit 0`
	out, err := a.out(ctx, "sh", "-c", script, "sh", base)
	if err != nil {
		return nil, nil, err
	}
	nums = map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		if f[0] == "dev" {
			nums[f[2]] = f[1]
		} else {
			holders = append(holders, f[1]+" is held by "+f[2])
		}
	}
	return nums, holders, nil
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct{ devNum, root, target, fstype, source string }

func (a *applier) mounts(ctx context.Context) ([]mountInfo, error) {
	out, err := a.out(ctx, "cat", "/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []mountInfo
	for _, l := range strings.Split(string(out), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		ms = append(ms, mountInfo{devNum: f[2], root: mountinfo.Unescape(f[3]), target: mountinfo.Unescape(f[4]), fstype: g[0], source: mountinfo.Unescape(g[1])})
	}
	return ms, nil
}

// safe refuses a disk that is in use or too small.
func (a *applier) safe(ctx context.Context, d *Node, dev string, s *Spec) (int64, error) {
	refuse := func(sentinel error, format string, args ...any) (int64, error) {
		return 0, fmt.Errorf("disk %q (%s): %s: %w: %w", d.Name, dev, fmt.Sprintf(format, args...), sentinel, ErrRefused)
	}
	nums, holders, err := a.devNums(ctx, dev)
	if err != nil {
		return refuse(ErrMissingDevice, "cannot read /sys/class/block/%s: %v", path.Base(dev), err)
	}
	ms, err := a.mounts(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		if name, ok := nums[m.devNum]; ok {
			if a.opt.Mode.Destroy && a.ownMounts[m.target] {
				continue // destroy unmounts the layout's own mounts first
			}
			if m.target == "/" {
				return refuse(ErrInUse, "/dev/%s holds the running root filesystem", name)
			}
			return refuse(ErrInUse, "/dev/%s is mounted on %s (hint: unmount it first, or run with --mode unmount)", name, m.target)
		}
	}
	swaps, err := a.out(ctx, "cat", "/proc/swaps")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(swaps), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		for _, name := range nums {
			if f[0] == "/dev/"+name {
				return refuse(ErrInUse, "/dev/%s is in use as swap (hint: swapoff it first)", name)
			}
		}
	}
	if len(holders) > 0 {
		return refuse(ErrInUse, "%s (md, dm or lvm; hint: stop it first)", strings.Join(holders, ", "))
	}
	out, err := a.out(ctx, "blockdev", "--getsize64", dev)
	if err != nil {
		return refuse(ErrMissingDevice, "cannot read its size: %v", err)
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if need := Needs(d); size < need {
		return refuse(ErrTooSmall, "%d bytes, the layout needs at least %d", size, need)
	}
	return size, nil
}

// Needs is the smallest disk size that holds d's layout: its sized
// partitions, 1 MiB alignment at the start, 1 MiB for the backup GPT and
// 1 MiB for each 100% partition.
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

func (a *applier) run(ctx context.Context, st *Step, args []string) error {
	c := remote.Cmd{Args: args}
	if st.KeyName != "" {
		key, ok := a.opt.Keys[st.KeyName]
		if !ok {
			return fmt.Errorf("%s: no key for luks %q (hint: pass --disk-key %s=FILE)", st.Node, st.KeyName, st.KeyName)
		}
		c.Stdin, c.Quiet = bytes.NewReader(key), true
	}
	_, err := a.r.Run(ctx, c)
	return err
}

// step runs one step: check, act, verify.
func (a *applier) step(ctx context.Context, st *Step) (err error) {
	l := a.log.With("phase", st.Phase, "disk", st.Disk, "action", st.Action, "node", st.Node)
	var cmdline []string
	for _, c := range st.Cmds {
		cmdline = append(cmdline, remote.ShellJoin(c))
	}
	l.Info("step started", "cmd", strings.Join(cmdline, "; "))
	skipped := false
	defer func() {
		switch {
		case err != nil:
			l.Error("step failed", "cmd", strings.Join(cmdline, "; "), "err", err)
			// A disk that vanished mid-way (cable, controller) explains
			// every later failure on it: say so first.
			if st.DiskDev != "" && ctx.Err() == nil && a.gone(ctx, st.DiskDev) {
				err = fmt.Errorf("disk %q (%s) disappeared: %w: %w", st.Disk, st.DiskDev, ErrMissingDevice, err)
			}
			err = fmt.Errorf("%s %s %s: %w", st.Phase, st.Action, st.Node, err)
		case skipped:
			l.Info("step finished", "result", "already done")
		default:
			l.Info("step finished")
		}
	}()
	runAll := func() error {
		for _, c := range st.Cmds {
			if err := a.run(ctx, st, c); err != nil {
				return err
			}
		}
		return nil
	}
	switch st.Action {
	case "partition":
		w, err := a.gptWork(ctx, *st)
		if err != nil {
			return err
		}
		if !w.clear && len(w.create) == 0 {
			skipped = true
			return nil
		}
		if w.foreign != "" {
			if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", st.Device}); err != nil {
				return err
			}
		}
		args := []string{"sgdisk"}
		if w.clear {
			args = append(args, "--clear")
		}
		args = append(args, "--align-end")
		for _, n := range w.del {
			args = append(args, "--delete="+strconv.Itoa(n))
		}
		for _, pt := range w.create {
			args = append(args, PartArgs(pt)...)
		}
		cmdline = []string{remote.ShellJoin(append(args, st.Device))}
		if err := a.run(ctx, st, append(args, st.Device)); err != nil {
			return err
		}
		for _, pt := range st.Parts {
			pi, err := a.partInfo(ctx, st.Device, pt.Index)
			if err != nil || pi == nil {
				return fmt.Errorf("partition %d missing on %s after sgdisk: %w", pt.Index, st.Device, ErrVerify)
			}
			if d := partDiff(pi, pt); d != "" {
				return fmt.Errorf("partition %d of %s has %s: %w", pt.Index, st.Device, d, ErrVerify)
			}
		}
	case "probe":
		return a.probe(ctx, st)
	case "mkfs", "mkswap", "luksFormat", "pvcreate":
		need, err := a.needs(ctx, *st)
		if err != nil {
			return err
		}
		if !need {
			skipped = true
			return nil
		}
		if a.opt.Wipe {
			if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", st.Device}); err != nil {
				return err
			}
		}
		if err := runAll(); err != nil {
			return err
		}
		if t, err := a.blkType(ctx, st.Device, false); err != nil || t != st.FSType {
			return fmt.Errorf("blkid finds %q on %s, want %s: %w", t, st.Device, st.FSType, ErrVerify)
		}
	case "subvolumes":
		return a.subvolumes(ctx, st)
	case "mount":
		m, err := a.mountedAt(ctx, st.Mountpoint)
		if err != nil {
			return err
		}
		if m != nil {
			if st.FSType != "tmpfs" && (m.fstype != st.FSType || !a.sameDevice(ctx, m.source, st.Device)) {
				return fmt.Errorf("%s is already mounted from %s (%s), the layout wants %s (%s): %w (hint: unmount it first)", st.Mountpoint, m.source, m.fstype, st.Device, st.FSType, ErrMismatch)
			}
			skipped = true
			return nil
		}
		if err := runAll(); err != nil {
			return err
		}
		if m, err := a.mountedAt(ctx, st.Mountpoint); err != nil || m == nil || m.fstype != st.FSType {
			return fmt.Errorf("%s is not mounted as %s after mount: %w", st.Mountpoint, st.FSType, ErrVerify)
		}
	case "umount":
		m, err := a.mountedAt(ctx, st.Mountpoint)
		if err != nil {
			return err
		}
		if m == nil {
			skipped = true
			return nil
		}
		if err := runAll(); err != nil {
			return err
		}
		if m, _ := a.mountedAt(ctx, st.Mountpoint); m != nil {
			return fmt.Errorf("%s is still mounted: %w", st.Mountpoint, ErrVerify)
		}
	case "swapoff":
		sw, err := a.out(ctx, "cat", "/proc/swaps")
		if err != nil {
			return err
		}
		real, _ := a.out(ctx, "readlink", "-f", st.Device)
		if !strings.Contains(string(sw), strings.TrimSpace(string(real))+" ") {
			skipped = true
			return nil
		}
		return runAll()
	case "wipe":
		nums, _, err := a.devNums(ctx, st.Device)
		if err != nil {
			return err
		}
		for _, name := range nums {
			if "/dev/"+name != st.Device {
				if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", "/dev/" + name}); err != nil {
					return err
				}
			}
		}
		if err := runAll(); err != nil {
			return err
		}
		if t, err := a.blkType(ctx, st.Device, true); err != nil || t != "" {
			return fmt.Errorf("blkid still finds %q on %s after wipefs: %w", t, st.Device, ErrVerify)
		}
	case "luksOpen", "mdcreate", "lvcreate":
		if a.exists(ctx, st.Device) {
			skipped = true
			return nil
		}
		if err := runAll(); err != nil {
			return err
		}
		if !a.exists(ctx, st.Device) {
			return fmt.Errorf("%s missing after %s: %w", st.Device, st.Action, ErrVerify)
		}
	case "vgchange":
		// Deactivating is teardown: a volume group that is not there
		// (blank disks before destroy) has nothing to deactivate.
		if st.Phase == "unmount" {
			if _, err := a.out(ctx, "vgs", "--noheadings", "-o", "vg_name", st.Device); err != nil {
				skipped = true
				return nil
			}
		}
		return runAll()
	case "mdassemble":
		dev, err := a.mdByName(ctx, st.Device)
		if err != nil {
			return err
		}
		if dev != "" {
			skipped = true
			return nil
		}
		if err := runAll(); err != nil {
			return err
		}
		if dev, err := a.mdByName(ctx, st.Device); err != nil || dev == "" {
			return fmt.Errorf("array %s missing after mdadm --assemble: %w", st.Device, ErrVerify)
		}
	case "luksClose":
		if !a.exists(ctx, st.Device) {
			skipped = true
			return nil
		}
		return runAll()
	case "mdstop":
		// The /dev/md/NAME link is udev's; find the array by its name.
		dev, err := a.mdByName(ctx, st.Device)
		if err != nil {
			return err
		}
		if dev == "" {
			skipped = true
			return nil
		}
		if err := a.run(ctx, st, []string{"mdadm", "--stop", dev}); err != nil {
			return err
		}
		if d, _ := a.mdByName(ctx, st.Device); d != "" {
			return fmt.Errorf("%s (%s) still running after mdadm --stop: %w", st.Device, dev, ErrVerify)
		}
	default:
		return runAll()
	}
	return nil
}

// probe makes sure the kernel has nodes for a disk's partitions: with udev,
// trigger and settle once; without, ask the kernel to reread the table when
// a node is missing. Nodes are checked through sysfs.
func (a *applier) probe(ctx context.Context, st *Step) error {
	if a.udev {
		if _, err := a.out(ctx, "udevadm", "trigger", "--subsystem-match=block"); err != nil {
			return err
		}
		if _, err := a.out(ctx, "udevadm", "settle"); err != nil {
			return err
		}
	}
	base := path.Base(st.DiskDev)
	// missing lists partitions whose kernel node is absent or whose start
	// and size (sysfs) differ from the table (sgdisk -i).
	missing := func() []string {
		var m []string
		for _, n := range st.PartNums {
			node := path.Base(PartNode(st.DiskDev, n))
			dir := "/sys/class/block/" + base + "/" + node
			out, err := a.out(ctx, "sh", "-c", `cat "$1/partition" "$1/start" "$1/size"`, "sh", dir)
			f := strings.Fields(string(out))
			pi, perr := a.partInfo(ctx, st.DiskDev, n)
			if err != nil || perr != nil || pi == nil || len(f) != 3 || f[0] != strconv.Itoa(n) ||
				f[1] != strconv.FormatInt(pi.First, 10) || f[2] != strconv.FormatInt(pi.Last-pi.First+1, 10) || !a.exists(ctx, "/dev/"+node) {
				m = append(m, "/dev/"+node)
			}
		}
		return m
	}
	if len(missing()) > 0 {
		// BLKRRPART is a no-op on some kernels for loop devices, and fails
		// while a partition is busy: partx updates the kernel's view
		// partition by partition.
		a.out(ctx, "blockdev", "--rereadpt", st.DiskDev)
		a.out(ctx, "partx", "-u", st.DiskDev)
		if len(missing()) > 0 {
			a.out(ctx, "partx", "-a", st.DiskDev)
		}
	}
	if m := missing(); len(m) > 0 {
		return fmt.Errorf("partition nodes %s missing or stale after rereading the table of %s: %w", strings.Join(m, ", "), st.DiskDev, ErrVerify)
	}
	return nil
}

func (a *applier) partsOf(st *Step) []int {
	return st.PartNums
}

func (a *applier) mountedAt(ctx context.Context, target string) (*mountInfo, error) {
	ms, err := a.mounts(ctx)
	if err != nil {
		return nil, err
	}
	var found *mountInfo
	for i := range ms {
		if ms[i].target == target {
			found = &ms[i]
		}
	}
	return found, nil
}

func (a *applier) subvolumes(ctx context.Context, st *Step) error {
	out, err := a.out(ctx, "mktemp", "-d", "/tmp/fleet-disko.XXXXXX")
	if err != nil {
		return err
	}
	tmp := strings.TrimSpace(string(out))
	defer a.out(context.WithoutCancel(ctx), "rmdir", tmp)
	if _, err := a.out(ctx, "mount", "-t", "btrfs", st.Device, tmp); err != nil {
		return err
	}
	defer a.out(context.WithoutCancel(ctx), "umount", tmp)
	for _, sv := range st.Subvols {
		if _, err := a.out(ctx, "btrfs", "subvolume", "show", tmp+"/"+sv); err == nil {
			continue
		}
		if _, err := a.out(ctx, "btrfs", "subvolume", "create", tmp+"/"+sv); err != nil {
			return err
		}
		if _, err := a.out(ctx, "btrfs", "subvolume", "show", tmp+"/"+sv); err != nil {
			return fmt.Errorf("subvolume %s missing after create: %w", sv, ErrVerify)
		}
	}
	return nil
}

// sameDevice reports whether two device paths name the same node.
func (a *applier) sameDevice(ctx context.Context, x, y string) bool {
	if x == y {
		return true
	}
	rx, err1 := a.out(ctx, "readlink", "-f", x)
	ry, err2 := a.out(ctx, "readlink", "-f", y)
	return err1 == nil && err2 == nil && strings.TrimSpace(string(rx)) == strings.TrimSpace(string(ry))
}

// mdByName returns the running array for /dev/md/NAME: the link when it
// exists, else the kernel's /dev/mdN whose MD_NAME is HOST:NAME or NAME;
// "" if none runs.
func (a *applier) mdByName(ctx context.Context, dev string) (string, error) {
	if a.exists(ctx, dev) {
		return dev, nil
	}
	out, err := a.out(ctx, "sh", "-c", `for d in /dev/md[0-9]*; do [ -b "$d" ] || continue; n=$(mdadm --detail --export "$d" 2>/dev/null | sed -n 's/^MD_NAME=//p'); [ -n "$n" ] && echo "$d $n"; done; true`)
	if err != nil {
		return "", err
	}
	name := path.Base(dev)
	for _, l := range strings.Split(string(out), "\n") {
		d, n, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if _, short, found := strings.Cut(n, ":"); n == name || (found && short == name) {
			return d, nil
		}
	}
	return "", nil
}
