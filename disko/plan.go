package disko

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// Step is one action of a plan with its exact commands.
type Step struct {
	Phase  string     `json:"phase"`  // destroy, format, mount, unmount
	Action string     `json:"action"` // clear, partition, probe, mkfs, mkswap, subvolumes, luksFormat, luksOpen, pvcreate, mdcreate, vgcreate, lvcreate, mount, umount, swapoff, vgchange, luksClose, mdstop, wipe
	Disk   string     `json:"disk,omitempty"`
	Node   string     `json:"node"`
	Device string     `json:"device,omitempty"`
	Cmds   [][]string `json:"commands"`
	// KeyName names the --disk-key whose bytes go to the commands' stdin.
	KeyName string `json:"key,omitempty"`

	// What apply checks and verifies.
	FSType     string       `json:"fstype,omitempty"` // blkid TYPE the step makes
	Parts      []*Partition `json:"-"`
	DiskDev    string       `json:"-"`
	Mountpoint string       `json:"mountpoint,omitempty"` // full path under root
	Subvols    []string     `json:"-"`
	PartNums   []int        `json:"-"` // probe: partition numbers to check
}

// Mode is a set of phases.
type Mode struct{ Destroy, Format, Mount, Unmount bool }

// ParseMode reads destroy,format,mount / format / mount / unmount (also format,mount).
func ParseMode(s string) (Mode, error) {
	var m Mode
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "destroy":
			m.Destroy = true
		case "format":
			m.Format = true
		case "mount":
			m.Mount = true
		case "unmount":
			m.Unmount = true
		default:
			return m, fmt.Errorf("mode %q: unknown phase %q (hint: use destroy,format,mount, format, mount or unmount)", s, p)
		}
	}
	if m.Unmount && (m.Destroy || m.Format || m.Mount) {
		return m, fmt.Errorf("mode %q: unmount cannot be combined with other phases", s)
	}
	if m.Destroy && !m.Format {
		return m, fmt.Errorf("mode %q: destroy needs format (hint: use destroy,format,mount)", s)
	}
	return m, nil
}

// PartNode is the kernel's node for partition n of disk: /dev/sda1,
// /dev/nvme0n1p1, /dev/loop0p1, or udev's -partN link for /dev/disk/by-* paths.
func PartNode(disk string, n int) string {
	if strings.HasPrefix(disk, "/dev/disk/by-") {
		return disk + "-part" + strconv.Itoa(n)
	}
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + strconv.Itoa(n)
	}
	return disk + strconv.Itoa(n)
}

// Options tune a plan.
type Options struct {
	Root    string            // mount root, default /mnt
	Devices map[string]string // disk name -> device path override
}

type mountEntry struct {
	mp, dev, fstype string
	opts            []string
	node            string
	disk            string
}

type planner struct {
	opt       Options
	steps     []Step
	mounts    []mountEntry
	swaps     []Step
	luks      []*Node // with Device set to the resolved backing device
	luksDev   map[*Node]string
	mdMembers map[string][]string
	vgPVs     map[string][]string
}

// DiskDevice is the device a disk resolves to, after --device overrides.
func DiskDevice(d *Node, opt Options) string {
	if p, ok := opt.Devices[d.Name]; ok {
		return p
	}
	return d.Device
}

// BuildPlan returns the ordered steps for mode. It touches nothing.
func BuildPlan(s *Spec, mode Mode, opt Options) ([]Step, error) {
	if opt.Root == "" {
		opt.Root = "/mnt"
	}
	if err := ValidateDevices(s, opt.Devices); err != nil {
		return nil, err
	}
	p := &planner{opt: opt, luksDev: map[*Node]string{}, mdMembers: map[string][]string{}, vgPVs: map[string][]string{}}
	// Walk once to learn devices, mounts and swaps.
	var format []Step
	for _, d := range s.Disks {
		dev := DiskDevice(d, opt)
		format = append(format, hooked(d, dev, d.Name, dev, p.node(d.Content, dev, d.Name, dev))...)
	}
	for _, md := range s.MDs {
		members := p.mdMembers[md.Name]
		args := []string{"mdadm", "--create", md.Device, "--level=" + strconv.Itoa(md.Level), "--raid-devices=" + strconv.Itoa(len(members)), "--metadata=" + md.Metadata, "--force", "--homehost=any", "--run"}
		body := []Step{{Phase: "format", Action: "mdcreate", Node: md.Path, Device: md.Device, Cmds: [][]string{append(args, members...)}, FSType: ""}}
		format = append(format, hooked(md, md.Device, "", "", append(body, p.node(md.Content, md.Device, "", "")...))...)
	}
	for _, vg := range s.VGs {
		body := []Step{{Phase: "format", Action: "vgcreate", Node: vg.Path, Device: vg.Name, Cmds: [][]string{append([]string{"vgcreate", vg.Name}, p.vgPVs[vg.Name]...)}}}
		for _, lv := range vg.LVs {
			size := []string{"-L", lv.Size}
			if strings.Contains(lv.Size, "%") {
				size = []string{"-l", lv.Size}
			}
			args := append([]string{"lvcreate", "--yes"}, size...)
			if lv.LVMType != "" {
				args = append(args, "--type", lv.LVMType)
			}
			args = append(args, "-n", lv.Name, vg.Name)
			body = append(body, Step{Phase: "format", Action: "lvcreate", Node: lv.Path, Device: lv.Device, Cmds: [][]string{args}})
			body = append(body, p.node(lv.Content, lv.Device, "", "")...)
		}
		format = append(format, hooked(vg, "", "", "", body)...)
	}
	for _, nd := range s.Nodevs {
		format = append(format, hooked(nd, nd.Device, "", "", nil)...)
		p.mounts = append(p.mounts, mountEntry{mp: nd.Mountpoint, dev: nd.Format, fstype: nd.Format, opts: nd.MountOptions, node: nd.Path})
	}
	sort.SliceStable(p.mounts, func(i, j int) bool {
		a, b := path.Clean(p.mounts[i].mp), path.Clean(p.mounts[j].mp)
		if ca, cb := strings.Count(a, "/"), strings.Count(b, "/"); a != "/" && b != "/" && ca != cb {
			return ca < cb
		}
		if a == "/" || b == "/" {
			return a == "/" && b != "/"
		}
		return a < b
	})
	var steps []Step
	if mode.Destroy || mode.Unmount {
		steps = append(steps, p.unmountSteps(s)...)
	}
	if mode.Destroy {
		for _, d := range s.Disks {
			dev := DiskDevice(d, opt)
			steps = append(steps, Step{Phase: "destroy", Action: "wipe", Disk: d.Name, Node: d.Path, Device: dev, DiskDev: dev, Cmds: [][]string{{"wipefs", "--all", "-f", dev}}})
		}
	}
	if mode.Format {
		steps = append(steps, format...)
	}
	if mode.Mount {
		steps = append(steps, p.mountSteps(s)...)
	}
	return steps, nil
}

func (p *planner) under(mp string) string { return path.Join(p.opt.Root, mp) }

// node plans formatting n living on dev, part of disk (name) diskDev.
func (p *planner) node(n *Node, dev, disk, diskDev string) (out []Step) {
	if n == nil {
		return nil
	}
	st := func(action string, cmds ...[]string) Step {
		return Step{Phase: "format", Action: action, Disk: disk, Node: n.Path, Device: dev, DiskDev: diskDev, Cmds: cmds}
	}
	defer func() { out = hooked(n, dev, disk, diskDev, out) }()
	switch n.Type {
	case "gpt":
		// One sgdisk call for the whole table: every sgdisk write costs a
		// table reread and a one-second sleep, so disko's call per partition
		// is slow. Apply drops --clear when a gpt is there and keeps only the
		// partitions that do not exist yet.
		args := []string{"sgdisk", "--clear", "--align-end"}
		for _, pt := range n.Partitions {
			args = append(args, PartArgs(pt)...)
		}
		ps := st("partition", append(args, dev))
		ps.Parts = n.Partitions
		out = append(out, ps)
		pr := st("probe")
		for _, pt := range n.Partitions {
			pr.PartNums = append(pr.PartNums, pt.Index)
		}
		out = append(out, pr)
		for _, pt := range n.Partitions {
			out = append(out, p.node(pt.Content, PartNode(dev, pt.Index), disk, diskDev)...)
		}
	case "filesystem":
		s := st("mkfs", append(append([]string{"mkfs." + n.Format}, n.ExtraArgs...), dev))
		s.FSType = n.Format
		out = append(out, s)
		if n.Mountpoint != "" {
			p.mounts = append(p.mounts, mountEntry{mp: n.Mountpoint, dev: dev, fstype: n.Format, opts: n.MountOptions, node: n.Path, disk: disk})
		}
	case "btrfs":
		s := st("mkfs", append(append([]string{"mkfs.btrfs"}, n.ExtraArgs...), dev))
		s.FSType = "btrfs"
		out = append(out, s)
		if len(n.Subvolumes) > 0 {
			s := st("subvolumes")
			for _, sv := range n.Subvolumes {
				s.Subvols = append(s.Subvols, sv.Name)
				s.Cmds = append(s.Cmds, []string{"btrfs", "subvolume", "create", "$TMP/" + sv.Name})
			}
			s.FSType = "btrfs"
			out = append(out, s)
		}
		if n.Mountpoint != "" {
			p.mounts = append(p.mounts, mountEntry{mp: n.Mountpoint, dev: dev, fstype: "btrfs", opts: n.MountOptions, node: n.Path, disk: disk})
		}
		for _, sv := range n.Subvolumes {
			if sv.Mountpoint != "" {
				p.mounts = append(p.mounts, mountEntry{mp: sv.Mountpoint, dev: dev, fstype: "btrfs", opts: append(append([]string{}, sv.MountOptions...), "subvol="+sv.Name), node: n.Path + ".subvolumes." + sv.Name, disk: disk})
			}
		}
	case "swap":
		s := st("mkswap", append(append([]string{"mkswap"}, n.ExtraArgs...), dev))
		s.FSType = "swap"
		out = append(out, s)
		off := st("swapoff", []string{"swapoff", dev})
		off.Phase = "unmount"
		p.swaps = append(p.swaps, off)
	case "luks":
		args := append([]string{"cryptsetup", "-q", "luksFormat", "--type", "luks2", "--key-file=-"}, n.ExtraFormatArgs...)
		s := st("luksFormat", append(args, dev))
		s.KeyName, s.FSType = n.Name, "crypto_LUKS"
		out = append(out, s)
		for _, kf := range n.AdditionalKeyFiles {
			a := st("luksAddKey", []string{"cryptsetup", "luksAddKey", "--key-file=-", dev, kf})
			a.KeyName = n.Name
			out = append(out, a)
		}
		out = append(out, p.luksOpen(n, dev, disk, diskDev))
		p.luks = append(p.luks, n)
		p.luksDev[n] = dev
		out = append(out, p.node(n.Content, "/dev/mapper/"+n.Name, disk, diskDev)...)
	case "lvm_pv":
		s := st("pvcreate", []string{"pvcreate", dev})
		s.FSType = "LVM2_member"
		out = append(out, s)
		p.vgPVs[n.VG] = append(p.vgPVs[n.VG], dev)
	case "mdraid":
		p.mdMembers[n.MD] = append(p.mdMembers[n.MD], dev)
	}
	return out
}

// hooked puts n's create hooks around body, the steps that create n and
// its content, as disko does: each runs in bash (set -efu) with the node's
// fields as shell variables (type, device, name, and format, mountpoint,
// mountOptions, extraArgs where the node has them), device being the one
// fleet resolved (a partition's kernel node, not udev's by-partlabel link).
func hooked(n *Node, dev, disk, diskDev string, body []Step) []Step {
	if n.PreCreateHook == "" && n.PostCreateHook == "" {
		return body
	}
	hook := func(name, script string) Step {
		return Step{Phase: "format", Action: name, Disk: disk, Node: n.Path, Device: dev, DiskDev: diskDev,
			Cmds: [][]string{{"bash", "-c", "set -efu\n" + hookVars(n, dev) + script, "disko-" + name}}}
	}
	var out []Step
	if n.PreCreateHook != "" {
		out = append(out, hook("preCreateHook", n.PreCreateHook))
	}
	out = append(out, body...)
	if n.PostCreateHook != "" {
		out = append(out, hook("postCreateHook", n.PostCreateHook))
	}
	return out
}

// hookVars are the shell assignments of n's fields for its hooks.
func hookVars(n *Node, dev string) string {
	var b strings.Builder
	set := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, remote.ShellQuote(v)) }
	list := func(k string, vs []string) {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = remote.ShellQuote(v)
		}
		fmt.Fprintf(&b, "%s=(%s)\n", k, strings.Join(q, " "))
	}
	set("type", n.Type)
	if dev != "" {
		set("device", dev)
	}
	if n.Name != "" {
		set("name", n.Name)
	}
	switch n.Type {
	case "filesystem", "btrfs", "nodev":
		if n.Type != "btrfs" {
			set("format", n.Format)
		}
		if n.Mountpoint != "" {
			set("mountpoint", n.Mountpoint)
		}
		list("mountOptions", n.MountOptions)
		list("extraArgs", n.ExtraArgs)
	case "swap":
		list("extraArgs", n.ExtraArgs)
	}
	return b.String()
}

func (p *planner) luksOpen(n *Node, dev, disk, diskDev string) Step {
	args := []string{"cryptsetup", "open", "--key-file=-"}
	if n.AllowDiscards {
		args = append(args, "--allow-discards")
	}
	args = append(append(args, n.ExtraOpenArgs...), dev, n.Name)
	return Step{Phase: "format", Action: "luksOpen", Disk: disk, Node: n.Path, Device: "/dev/mapper/" + n.Name, DiskDev: diskDev, Cmds: [][]string{args}, KeyName: n.Name}
}

func (p *planner) mountSteps(s *Spec) []Step {
	var out []Step
	// Arrays stopped by an unmount are assembled again from their members.
	for _, md := range s.MDs {
		args := append([]string{"mdadm", "--assemble", md.Device}, p.mdMembers[md.Name]...)
		out = append(out, Step{Phase: "mount", Action: "mdassemble", Node: md.Path, Device: md.Device, Cmds: [][]string{args}})
	}
	for _, l := range p.luks {
		st := p.luksOpen(l, p.luksDev[l], "", "")
		st.Phase = "mount"
		out = append(out, st)
	}
	for _, vg := range s.VGs {
		out = append(out, Step{Phase: "mount", Action: "vgchange", Node: vg.Path, Device: vg.Name, Cmds: [][]string{{"vgchange", "-a", "y", vg.Name}}})
	}
	for _, m := range p.mounts {
		target := p.under(m.mp)
		opts := strings.Join(m.opts, ",")
		out = append(out, Step{Phase: "mount", Action: "mount", Disk: m.disk, Node: m.node, Device: m.dev, FSType: m.fstype, Mountpoint: target,
			Cmds: [][]string{{"mount", "-t", m.fstype, "-o", opts, "-o", "X-mount.mkdir", m.dev, target}}})
	}
	return out
}

func (p *planner) unmountSteps(s *Spec) []Step {
	var out []Step
	for i := len(p.mounts) - 1; i >= 0; i-- {
		m := p.mounts[i]
		target := p.under(m.mp)
		out = append(out, Step{Phase: "unmount", Action: "umount", Disk: m.disk, Node: m.node, Device: m.dev, Mountpoint: target, Cmds: [][]string{{"umount", target}}})
	}
	out = append(out, p.swaps...)
	for _, vg := range s.VGs {
		out = append(out, Step{Phase: "unmount", Action: "vgchange", Node: vg.Path, Device: vg.Name, Cmds: [][]string{{"vgchange", "-a", "n", vg.Name}}})
	}
	for i := len(p.luks) - 1; i >= 0; i-- {
		l := p.luks[i]
		out = append(out, Step{Phase: "unmount", Action: "luksClose", Node: l.Path, Device: "/dev/mapper/" + l.Name, Cmds: [][]string{{"cryptsetup", "close", l.Name}}})
	}
	for _, md := range s.MDs {
		out = append(out, Step{Phase: "unmount", Action: "mdstop", Node: md.Path, Device: md.Device, Cmds: [][]string{{"mdadm", "--stop", md.Device}}})
	}
	return out
}

// PartArgs are sgdisk's options that create pt, as disko writes them.
func PartArgs(pt *Partition) []string {
	args := []string{
		fmt.Sprintf("--new=%d:%s:%s", pt.Index, pt.Start, pt.End),
		fmt.Sprintf("--change-name=%d:%s", pt.Index, pt.Label),
		fmt.Sprintf("--typecode=%d:%s", pt.Index, pt.TypeCode)}
	if pt.UUID != "" {
		args = append(args, fmt.Sprintf("--partition-guid=%d:%s", pt.Index, pt.UUID))
	}
	for _, a := range pt.Attributes {
		args = append(args, fmt.Sprintf("--attributes=%d:set:%d", pt.Index, a))
	}
	return args
}
