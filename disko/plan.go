package disko

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Step is one action of a plan: where it acts, its typed [Action] (which
// checks, acts and verifies), and the exact commands it runs.
type Step struct {
	Phase  Phase
	Action Action
	Disk   string // the layout's disk it writes to, "" for none
	Node   string // node path in the spec
	Device string // the device it acts on
	Cmds   [][]string
	// KeyName names the --disk-key whose bytes go to the commands' stdin.
	KeyName string
	// What the step makes, for checks and display.
	FSType     string // blkid TYPE
	Mountpoint string // full path under the root
	// DiskDev is the kernel node of the disk under the device, to tell a
	// vanished disk from a failed command.
	DiskDev string
	// Kept: the step is on a kept device (Options.Keep): it checks and
	// brings up, and never writes.
	Kept bool
}

// Kind names the step's action (mkfs, partition...), "" for none.
func (st *Step) Kind() string {
	if st.Action == nil {
		return ""
	}
	return st.Action.Kind()
}

// String is how logs and progress name the step.
func (st *Step) String() string { return string(st.Phase) + " " + st.Kind() + " " + st.Node }

// MarshalJSON writes the step for `disko plan --json` (a stable shape).
func (st Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Phase      Phase      `json:"phase"`
		Action     string     `json:"action"`
		Disk       string     `json:"disk,omitempty"`
		Node       string     `json:"node"`
		Device     string     `json:"device,omitempty"`
		Cmds       [][]string `json:"commands"`
		KeyName    string     `json:"key,omitempty"`
		FSType     string     `json:"fstype,omitempty"`
		Mountpoint string     `json:"mountpoint,omitempty"`
		Kept       bool       `json:"kept,omitempty"`
	}{st.Phase, st.Kind(), st.Disk, st.Node, st.Device, st.Cmds, st.KeyName, st.FSType, st.Mountpoint, st.Kept})
}

// Options tune a plan.
type Options struct {
	Root    string            // mount root, default /mnt
	Devices map[string]string // disk name -> device path override
	// Keep names disks that are never wiped, partitioned or formatted:
	// they, and the arrays and volume groups built only on them, are
	// checked against the layout and brought up, in any mode that
	// formats or mounts (see keep.go).
	Keep []string
}

// DiskDevice is the device a disk resolves to, after --device overrides.
func DiskDevice(d *Node, opt Options) string {
	if p, ok := opt.Devices[d.Name]; ok {
		return p
	}
	return d.Device
}

type planner struct {
	spec      *Spec
	opt       Options
	mounts    []mountEntry
	unmounts  []unmountEntry
	luksOpen  map[*Node]Step // the mount phase's open, by node
	mdMembers map[string][]string
	vgPVs     map[string][]string
	// zfsMembers: pool name -> its members in creation order
	zfsMembers map[string][]poolMember
}

// BuildPlan returns the ordered steps for mode. It touches nothing.
func BuildPlan(s *Spec, mode Mode, opt Options) ([]Step, error) {
	if opt.Root == "" {
		opt.Root = "/mnt"
	}
	if err := mode.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateDevices(s, opt.Devices); err != nil {
		return nil, err
	}
	kept, err := keptDevices(s, opt.Keep)
	if err != nil {
		return nil, err
	}
	for _, z := range s.Zpools {
		if mr := z.Zpool.MountRoot; mr != "" && path.Clean(mr) != path.Clean(opt.Root) {
			return nil, fmt.Errorf("%s.mountRoot: %q: the pool is imported under the mount root, %s (disko removed mountRoot in 2023 for the same reason): %w\nhint: remove mountRoot, or set the mount root to it (--root)", z.Path, mr, opt.Root, ErrSpec)
		}
	}
	p := &planner{spec: s, opt: opt, luksOpen: map[*Node]Step{}, mdMembers: map[string][]string{}, vgPVs: map[string][]string{},
		zfsMembers: map[string][]poolMember{}}
	order := deviceOrder(s)
	var format, keep []Step
	for _, top := range order {
		steps := p.top(top)
		if kept[top] {
			keep = append(keep, keepStep(top, steps, opt))
			continue
		}
		format = append(format, steps...)
	}
	var steps []Step
	if mode.Destroy || mode.Unmount {
		// Destroy leaves kept devices up (udev may have assembled them);
		// an unmount takes everything down.
		spare := kept
		if !mode.Destroy {
			spare = nil
		}
		steps = append(steps, p.unmountSteps(order, spare)...)
	}
	if mode.Destroy {
		for _, d := range s.Disks {
			if !d.Destroy || kept[d] {
				continue // destroy = false: disko leaves it as it is
			}
			dev := DiskDevice(d, opt)
			steps = append(steps, Step{Phase: PhaseDestroy, Action: &Wipe{}, Disk: d.Name, Node: d.Path, Device: dev, DiskDev: dev,
				Cmds: [][]string{{"wipefs", "--all", "-f", dev}}})
		}
	}
	if mode.Format || mode.Mount {
		steps = append(steps, keep...)
	}
	if mode.Format {
		steps = append(steps, format...)
	}
	if mode.Mount {
		steps = append(steps, p.mountSteps(s, order)...)
	}
	return steps, nil
}

func (p *planner) under(mp string) string { return path.Join(p.opt.Root, mp) }

// top plans creating one top-level device.
func (p *planner) top(n *Node) []Step {
	switch n.Type {
	case "disk":
		dev := DiskDevice(n, p.opt)
		return p.hooked(n, dev, n.Name, dev, p.node(n.Content, dev, n.Name, dev))
	case "mdadm":
		members := p.mdMembers[n.Name]
		args := []string{"mdadm", "--create", n.Device, "--level=" + strconv.Itoa(n.Level), "--raid-devices=" + strconv.Itoa(len(members)),
			"--metadata=" + n.Metadata, "--force", "--homehost=any"}
		args = append(append(append(args, n.ExtraArgs...), "--run"), members...)
		body := []Step{{Phase: PhaseFormat, Action: &MDCreate{Name: n.Name, Level: n.Level, Metadata: n.Metadata, Members: members}, Node: n.Path, Device: n.Device,
			Cmds: [][]string{args, {"sgdisk", "--zap-all", n.Device}}}}
		return p.hooked(n, n.Device, "", "", append(body, p.node(n.Content, n.Device, "", n.Device)...))
	case "lvm_vg":
		body := []Step{{Phase: PhaseFormat, Action: &VGCreate{}, Node: n.Path, Device: n.Name,
			Cmds: [][]string{append([]string{"vgcreate", n.Name}, p.vgPVs[n.Name]...)}}}
		// disko creates every LV, by priority, before any content.
		for _, lv := range n.LVs {
			size, _ := lvSizeArgs(lv.Size, lv.LVMType)
			args := append([]string{"lvcreate", "--yes"}, size...)
			args = append(args, "-n", lv.Name)
			switch lv.LVMType {
			case "thinlv":
				args = append(args, "--thinpool="+lv.Pool)
			case "":
			default:
				args = append(args, "--type="+lv.LVMType)
			}
			args = append(append(args, lv.ExtraArgs...), n.Name)
			body = append(body, Step{Phase: PhaseFormat, Action: &LVCreate{}, Node: lv.Path, Device: lv.Device, Cmds: [][]string{args}})
		}
		for _, lv := range n.LVs {
			body = append(body, p.node(lv.Content, lv.Device, "", "")...)
		}
		return p.hooked(n, "", "", "", body)
	case "nodev":
		src := n.Device
		if slices.Contains(n.MountOptions, "bind") {
			src = p.under(n.Device)
		}
		if n.Mountpoint != "" {
			p.mounts = append(p.mounts, mountEntry{mp: n.Mountpoint, dev: src, diskoDev: n.Device, fstype: n.Format, opts: n.MountOptions, node: n.Path})
			p.unmounts = append(p.unmounts, unmountEntry{n.Mountpoint, Step{Phase: PhaseUnmount, Action: &Umount{}, Node: n.Path,
				Device: src, Mountpoint: p.under(n.Mountpoint), Cmds: [][]string{{"umount", p.under(n.Mountpoint)}}}})
		}
		return p.hooked(n, n.Device, "", "", nil)
	case "zpool":
		return p.zpool(n)
	}
	return nil
}

// node plans formatting n living on dev, part of disk (name) diskDev.
func (p *planner) node(n *Node, dev, disk, diskDev string) (out []Step) {
	if n == nil {
		return nil
	}
	st := func(a Action, cmds ...[]string) Step {
		return Step{Phase: PhaseFormat, Action: a, Disk: disk, Node: n.Path, Device: dev, DiskDev: diskDev, Cmds: cmds}
	}
	defer func() { out = p.hooked(n, dev, disk, diskDev, out) }()
	switch n.Type {
	case "gpt":
		// One sgdisk call for the whole table: every sgdisk write costs a
		// table reread and a one-second sleep, so disko's call per
		// partition is slow. Apply drops --clear when a gpt is there and
		// keeps only the partitions that do not exist yet.
		args := []string{"sgdisk", "--clear", "--align-end"}
		for _, pt := range n.Partitions {
			args = append(args, PartArgs(pt)...)
		}
		out = append(out, st(&GPT{Table: n}, append(args, dev)))
		// The hybrid MBR goes before the probe: writing it makes the
		// kernel drop the disk's partitions until the table is reread.
		if h := hybridCmds(n, dev); h != nil {
			out = append(out, st(&HybridMBR{Table: n}, h...))
		}
		var nums []int
		for _, pt := range n.Partitions {
			nums = append(nums, pt.Index)
		}
		out = append(out, probeStep(st(&Probe{Parts: nums}), dev))
		for _, pt := range n.Partitions {
			out = append(out, p.node(pt.Content, PartNode(dev, pt.Index), disk, diskDev)...)
		}
	case "table":
		out = append(out, st(&Table{Table: n}, tableCmds(n, dev)...))
		var nums []int
		for _, tp := range n.TableParts {
			nums = append(nums, tp.Index)
		}
		out = append(out, probeStep(st(&Probe{Parts: nums, Table: true}), dev))
		for _, tp := range n.TableParts {
			out = append(out, p.node(tp.Content, PartNode(dev, tp.Index), disk, diskDev)...)
		}
	case "filesystem":
		s := st(&Mkfs{}, append(append([]string{"mkfs." + n.Format}, n.ExtraArgs...), dev))
		s.FSType = n.Format
		out = append(out, s)
		p.mount(n, n.Mountpoint, dev, n.Format, n.MountOptions, n.Path, disk)
	case "btrfs":
		s := st(&Mkfs{}, append([]string{"mkfs.btrfs", dev}, n.ExtraArgs...))
		s.FSType = "btrfs"
		out = append(out, s)
		if len(n.Subvolumes) > 0 || len(n.Swapfiles) > 0 {
			t := st(&BtrfsTree{Top: n.Swapfiles, Subvols: n.Subvolumes})
			for _, f := range n.Swapfiles {
				t.Cmds = append(t.Cmds, mkswapfile("$MNT", f))
			}
			for _, sv := range n.Subvolumes {
				t.Cmds = append(t.Cmds, append([]string{"btrfs", "subvolume", "create", "$MNT/" + strings.TrimPrefix(sv.Name, "/")}, sv.ExtraArgs...))
				for _, f := range sv.Swapfiles {
					t.Cmds = append(t.Cmds, mkswapfile("$MNT/"+strings.TrimPrefix(sv.Name, "/"), f))
				}
			}
			t.FSType = "btrfs"
			out = append(out, t)
		}
		p.mount(n, n.Mountpoint, dev, "btrfs", n.MountOptions, n.Path, disk)
		for _, sv := range n.Subvolumes {
			opts := append(append([]string{}, sv.MountOptions...), "subvol="+sv.Name)
			p.mount(n, sv.Mountpoint, dev, "btrfs", opts, n.Path+".subvolumes."+sv.Name, disk)
		}
	case "swap":
		if n.RandomEncryption {
			// disko leaves it raw: the booted system makes it encrypted
			// swap with a new random key at each boot.
			break
		}
		s := st(&Mkswap{}, append(append([]string{"mkswap"}, n.ExtraArgs...), dev))
		s.FSType = "swap"
		out = append(out, s)
		off := st(&Swapoff{}, []string{"swapoff", dev})
		off.Phase = PhaseUnmount
		p.unmounts = append(p.unmounts, unmountEntry{n.Device, off})
	case "luks":
		s := st(&LuksFormat{}, append(append(append([]string{"cryptsetup", "-q", "luksFormat", dev}, n.ExtraFormatArgs...), "--key-file=-"), keyFileArgs(n)...))
		s.KeyName, s.FSType = n.Name, "crypto_LUKS"
		out = append(out, s)
		open := p.luksOpenStep(n, dev, disk, diskDev)
		open.Cmds[0] = append(open.Cmds[0], "--persistent")
		out = append(out, open)
		for _, kf := range n.AdditionalKeyFiles {
			a := st(&LuksAddKey{}, append([]string{"cryptsetup", "luksAddKey", dev, kf, "--key-file=-"}, keyFileArgs(n)...))
			a.KeyName = n.Name
			out = append(out, a)
		}
		mo := p.luksOpenStep(n, dev, disk, diskDev)
		mo.Phase = PhaseMount
		p.luksOpen[n] = mo
		out = append(out, p.node(n.Content, "/dev/mapper/"+n.Name, disk, diskDev)...)
	case "lvm_pv":
		s := st(&PVCreate{}, []string{"pvcreate", dev})
		s.FSType = "LVM2_member"
		out = append(out, s)
		p.vgPVs[n.VG] = append(p.vgPVs[n.VG], dev)
	case "mdraid":
		p.mdMembers[n.MD] = append(p.mdMembers[n.MD], dev)
	case "zfs":
		p.zfsMembers[n.Pool] = append(p.zfsMembers[n.Pool], poolMember{diskoDev: n.Device, dev: dev, disk: disk})
	}
	return out
}

// keepStep is the step that checks and brings up the kept top-level
// device n, made of the steps that would create it.
func keepStep(n *Node, steps []Step, opt Options) Step {
	inner := keepSteps(steps)
	var cmds [][]string
	for i := range inner {
		inner[i].Phase, inner[i].Kept = PhaseKeep, true
		if _, ok := inner[i].Action.(activator); ok {
			cmds = append(cmds, inner[i].Cmds...)
		}
	}
	dev := n.Device
	switch n.Type {
	case "disk":
		dev = DiskDevice(n, opt)
	case "lvm_vg":
		dev = n.Name
	}
	return Step{Phase: PhaseKeep, Action: &Keep{Top: n, Steps: inner}, Node: n.Path, Device: dev, Cmds: cmds, Kept: true}
}

// probeStep is st probing the partitions of the table on dev.
func probeStep(st Step, dev string) Step {
	st.DiskDev = dev
	return st
}

func mkswapfile(dir string, f *Swapfile) []string {
	return []string{"btrfs", "filesystem", "mkswapfile", "--size", f.Size, dir + "/" + f.Path}
}

// keyFileArgs are cryptsetup's options for reading part of the key.
func keyFileArgs(n *Node) []string {
	var a []string
	if n.KeyFileSize != nil {
		a = append(a, "--keyfile-size", strconv.Itoa(*n.KeyFileSize))
	}
	if n.KeyFileOffset != nil {
		a = append(a, "--keyfile-offset", strconv.Itoa(*n.KeyFileOffset))
	}
	return a
}

func (p *planner) luksOpenStep(n *Node, dev, disk, diskDev string) Step {
	args := []string{"cryptsetup", "open", dev, n.Name}
	if n.AllowDiscards {
		args = append(args, "--allow-discards")
	}
	if n.BypassWorkqueues {
		args = append(args, "--perf-no_read_workqueue", "--perf-no_write_workqueue")
	}
	args = append(append(append(args, n.ExtraOpenArgs...), "--key-file=-"), keyFileArgs(n)...)
	return Step{Phase: PhaseFormat, Action: &LuksOpen{}, Disk: disk, Node: n.Path, Device: "/dev/mapper/" + n.Name, DiskDev: diskDev, Cmds: [][]string{args}, KeyName: n.Name}
}

// PartArgs are sgdisk's options that create pt, as disko writes them.
func PartArgs(pt *Partition) []string {
	var args []string
	if pt.Alignment != 0 {
		args = append(args, "--set-alignment="+strconv.Itoa(pt.Alignment))
	}
	args = append(args,
		fmt.Sprintf("--new=%d:%s:%s", pt.Index, pt.Start, pt.End),
		fmt.Sprintf("--change-name=%d:%s", pt.Index, pt.Label),
		fmt.Sprintf("--typecode=%d:%s", pt.Index, pt.TypeCode))
	if pt.UUID != "" {
		args = append(args, fmt.Sprintf("--partition-guid=%d:%s", pt.Index, pt.UUID))
	}
	for _, a := range uniqueInts(pt.Attributes) {
		args = append(args, fmt.Sprintf("--attributes=%d:set:%d", pt.Index, a))
	}
	return args
}

func uniqueInts(xs []int) []int {
	var out []int
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// hybridCmds are disko's commands for a hybrid MBR on the gpt n of dev:
// sgdisk -h with the hybrid partitions (EE last unless
// efiGptPartitionFirst), then sfdisk for each one's MBR type and boot flag.
func hybridCmds(n *Node, dev string) [][]string {
	var nums []string
	var rest [][]string
	for _, pt := range n.Partitions {
		if pt.Hybrid == nil {
			continue
		}
		i := strconv.Itoa(pt.Index)
		nums = append(nums, i)
		if pt.Hybrid.MBRType != "" {
			rest = append(rest, []string{"sfdisk", "--label-nested", "dos", "--part-type", dev, i, pt.Hybrid.MBRType})
		}
		if pt.Hybrid.Bootable {
			rest = append(rest, []string{"sfdisk", "--label-nested", "dos", "--activate", dev, i})
		}
	}
	if nums == nil {
		return nil
	}
	h := strings.Join(nums, ":")
	if !n.EFIGPTFirst {
		h += ":EE"
	}
	return append([][]string{{"sgdisk", "-h", h, dev}}, rest...)
}

// tableCmds are parted's commands for a legacy table, as disko runs them.
func tableCmds(n *Node, dev string) [][]string {
	cmds := [][]string{{"parted", "-s", dev, "--", "mklabel", n.TableFormat}}
	for _, tp := range n.TableParts {
		mk := []string{"parted", "-s", dev, "--", "mkpart"}
		if n.TableFormat == "gpt" {
			mk = append(mk, udevEscape(tp.Name))
		} else {
			mk = append(mk, tp.PartType)
		}
		if tp.FSType != "" {
			mk = append(mk, tp.FSType)
		}
		cmds = append(cmds, append(mk, tp.Start, tp.End))
		i := strconv.Itoa(tp.Index)
		if tp.Bootable {
			cmds = append(cmds, []string{"parted", "-s", dev, "--", "set", i, "boot", "on"})
		}
		for _, f := range tp.Flags {
			cmds = append(cmds, []string{"parted", "-s", dev, "--", "set", i, f, "on"})
		}
	}
	return cmds
}
