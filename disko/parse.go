package disko

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/fleetnix/fleet/remote"
)

// ErrSpec marks an invalid layout; every validation error wraps it.
var ErrSpec = errors.New("invalid disko spec")

// ErrUnsupported marks what disko does and fleet does not do yet (zfs,
// bcachefs, mount hooks...): refused by name before anything runs.
var ErrUnsupported = errors.New("not supported yet")

func specErr(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", path, fmt.Sprintf(format, args...), ErrSpec)
}

func unsupported(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s is %w", path, fmt.Sprintf(format, args...), ErrUnsupported)
}

// parser holds what Parse learns across the tree; err is its first error.
type parser struct {
	err       error
	spec      *Spec
	mounts    map[string]string   // mountpoint -> node path
	mdMembers map[string][]string // md name -> member devices (disko's)
	vgPVs     map[string][]string // vg name -> pv devices (disko's)
	// deps: top-level device ("mdadm.NAME", "lvm_vg.NAME", by name) ->
	// the top-level devices ("disk.KEY"...) it is built on.
	deps map[string][]string
	// names: device-mapper, md and VG names -> the node that takes it
	names map[string]string
}

// claim records that path names a device kind:name; a second claim is a
// conflict (two LUKS devices of one name would open one mapping).
func (p *parser) claim(kind, name, path string) {
	if p.names == nil {
		p.names = map[string]string{}
	}
	if prev, ok := p.names[kind+":"+name]; ok {
		p.specErr(path, "%s name %q: already used by %s", kind, name, prev)
		return
	}
	p.names[kind+":"+name] = path
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) specErr(path, format string, args ...any) {
	p.fail(specErr(path, format, args...))
}

func (p *parser) unsupported(path, format string, args ...any) {
	p.fail(unsupported(path, format, args...))
}

// Parse reads disko's devices JSON (the value of disko.devices) in either
// form and returns the layout with disko's defaults filled in. Values that
// lib.mkDefault, lib.mkForce or lib.mkIf wrap are unwrapped.
func Parse(data []byte) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse disko JSON: %v: %w", err, ErrSpec)
	}
	v, _, err := unwrapNix(v, "disko.devices")
	if err != nil {
		return nil, err
	}
	p := &parser{spec: &Spec{}, mounts: map[string]string{}, mdMembers: map[string][]string{},
		vgPVs: map[string][]string{}, deps: map[string][]string{}}
	top := &obj{p: p, m: map[string]any{}, used: map[string]bool{}}
	if m, ok := v.(map[string]any); ok {
		top.m = m
	} else {
		return nil, specErr("disko.devices", "%s: want an attrset of disk, mdadm, lvm_vg, nodev", show(v))
	}
	at := func(k string) string { return k }
	for _, k := range []string{"zpool", "bcachefs_filesystems", "bcachefs"} {
		if objs := top.subsAt(k, at(k)); len(objs) > 0 {
			what := map[string]string{"zpool": "zfs", "bcachefs_filesystems": "bcachefs", "bcachefs": "bcachefs"}[k]
			hint := ""
			if what == "zfs" {
				hint = "\nhint: use gpt with ext4, xfs or btrfs"
			}
			return nil, fmt.Errorf("%s: %s is %w%s", objs[0].path, what, ErrUnsupported, hint)
		}
	}
	for _, o := range top.subsAt("disk", "disk") {
		p.spec.Disks = append(p.spec.Disks, p.disk(o))
	}
	for _, o := range top.subsAt("mdadm", "mdadm") {
		p.spec.MDs = append(p.spec.MDs, p.mdadm(o))
	}
	for _, o := range top.subsAt("lvm_vg", "lvm_vg") {
		p.spec.VGs = append(p.spec.VGs, p.lvmVG(o))
	}
	for _, o := range top.subsAt("nodev", "nodev") {
		p.spec.Nodevs = append(p.spec.Nodevs, p.nodev(o))
	}
	for _, k := range sortedKeys(top.m) {
		if !top.used[k] && !strings.HasPrefix(k, "_") {
			p.specErr(k, "disko has no device type %q (it has disk, mdadm, lvm_vg, nodev, zpool, bcachefs_filesystems)", k)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	p.crossRefs()
	if p.err != nil {
		return nil, p.err
	}
	return p.spec, nil
}

// subsAt is subs for the top level, whose paths have no prefix.
func (o *obj) subsAt(k, path string) []*obj {
	saved := o.path
	o.path = ""
	objs := o.subs(k)
	o.path = saved
	for _, s := range objs {
		s.path = path + "." + s.key
	}
	return objs
}

// crossRefs fills in md members and VG PVs, and refuses references to
// devices that are not there.
func (p *parser) crossRefs() {
	for _, md := range p.spec.MDs {
		md.Members = p.mdMembers[md.Name]
		if len(md.Members) == 0 {
			p.specErr(md.Path, "no mdraid member refers to it")
			return
		}
		delete(p.mdMembers, md.Name)
		if err := checkMDLevel(md); err != nil {
			p.fail(err)
			return
		}
	}
	for _, name := range sortedKeys(p.mdMembers) {
		p.specErr("mdadm."+name, "referenced by an mdraid member but not defined")
		return
	}
	for _, vg := range p.spec.VGs {
		vg.PVs = p.vgPVs[vg.Name]
		if len(vg.PVs) == 0 {
			p.specErr(vg.Path, "no lvm_pv refers to it")
			return
		}
		delete(p.vgPVs, vg.Name)
		if err := checkLVs(vg); err != nil {
			p.fail(err)
			return
		}
	}
	for _, name := range sortedKeys(p.vgPVs) {
		p.specErr("lvm_vg."+name, "referenced by an lvm_pv but not defined")
		return
	}
	if _, ok := orderDevices(p.spec); !ok {
		var names []string
		for _, n := range append(append([]*Node{}, p.spec.MDs...), p.spec.VGs...) {
			names = append(names, n.Path)
		}
		p.specErr("disko.devices", "%s are built on each other in a cycle (an array or volume group inside itself)", strings.Join(names, ", "))
	}
}

// hooks takes o's create hooks into n and refuses the hooks fleet does
// not run: a layout whose mount hooks were silently skipped would boot
// differently from disko's.
func (o *obj) hooks(n *Node) {
	for _, h := range []string{"preMountHook", "postMountHook", "preUnmountHook", "postUnmountHook"} {
		if strings.TrimSpace(o.str(h, "")) != "" {
			o.p.fail(fmt.Errorf("%s: %s is %w: fleet runs preCreateHook and postCreateHook only\nhint: do it in postCreateHook, or in the installed system", o.path, h, ErrUnsupported))
		}
	}
	n.PreCreateHook, n.PostCreateHook = strings.TrimSpace(o.str("preCreateHook", "")), strings.TrimSpace(o.str("postCreateHook", ""))
}

// typeIs reads the node's type option: it must be want (or absent where
// disko gives it that default).
func (o *obj) typeIs(want string, optional bool) {
	t := o.str("type", "")
	if t == "" && optional {
		return
	}
	if t != want {
		o.p.specErr(o.at("type"), "%q: want %q", t, want)
	}
}

// words reads an option that disko pastes into its script unquoted (it
// runs `toString extraArgs`), so bash splits it into words: "-d raid1" is
// two arguments. Fleet passes the same words; a value that bash would
// read as more than plain words (quotes, $, `, ;, |, &, <, >, (, ), {, })
// is refused rather than guessed at.
func (o *obj) words(k string) []string {
	var out []string
	for i, s := range o.strs(k) {
		if strings.ContainsAny(s, "'\"\\$`;&|<>(){}\n") || strings.HasPrefix(s, "~") {
			o.p.fail(fmt.Errorf("%s[%d]: %q: disko hands this to bash unquoted, and fleet takes plain words only: %w\nhint: write each word as its own list item, without quotes or shell syntax", o.at(k), i, s, ErrUnsupported))
			return nil
		}
		out = append(out, strings.Fields(s)...)
	}
	return out
}

// absPath reads an option of disko's absolute-pathname type.
func (o *obj) absPath(k string) string {
	s := o.str(k, "")
	if s != "" && (!strings.HasPrefix(s, "/") || strings.Contains(s, "\x00")) {
		o.p.specErr(o.at(k), "%q: want an absolute path", s)
	}
	return s
}

// parent is what a content node learns from the node holding it.
type parent struct {
	typ, name string // disko's _parent.type and _parent.name (partition labels)
	dev       string // disko's device for the content
	top       string // the top-level device it belongs to: disk.KEY, mdadm.NAME...
	device    bool   // deviceType (a table may go here), else partitionType
}

func (p *parser) disk(o *obj) *Node {
	o.typeIs("disk", true)
	n := &Node{Type: "disk", Key: o.key, Path: o.path}
	n.Name = o.str("name", strings.ReplaceAll(o.key, "/", "_"))
	n.Device = o.absPath("device")
	if n.Device == "" {
		p.specErr(o.at("device"), "missing: want the disk's absolute path, like /dev/disk/by-id/...")
	}
	n.Destroy = o.flag("destroy", true)
	o.ignore("imageName", "imageSize")
	o.hooks(n)
	n.Content = p.content(o.sub("content"), parent{typ: "disk", name: n.Name, dev: n.Device, top: "disk." + o.key, device: true})
	o.finish()
	return n
}

func (p *parser) mdadm(o *obj) *Node {
	o.typeIs("mdadm", true)
	n := &Node{Type: "mdadm", Key: o.key, Path: o.path}
	n.Name = o.str("name", o.key)
	if !devNameRE.MatchString(n.Name) {
		p.specErr(o.at("name"), "%q: an md array name is letters, digits and +_.:@-", n.Name)
	}
	n.Device = "/dev/md/" + n.Name
	p.claim("md", n.Name, o.path)
	n.Level = o.int("level", 1)
	n.Metadata = o.str("metadata", "default")
	switch n.Metadata {
	case "1", "1.0", "1.1", "1.2", "default":
	case "ddf", "imsm":
		p.unsupported(o.at("metadata"), "%q (a container format)", n.Metadata)
	default:
		p.specErr(o.at("metadata"), "%q: disko takes 1, 1.0, 1.1, 1.2, default, ddf or imsm", n.Metadata)
	}
	n.ExtraArgs = o.strs("extraArgs") // disko quotes each
	o.hooks(n)
	n.Content = p.content(o.sub("content"), parent{typ: "mdadm", name: n.Name, dev: n.Device, top: "mdadm." + n.Name, device: true})
	o.finish()
	return n
}

// checkMDLevel refuses levels mdadm does not make and member counts it
// refuses for the level (disko passes --force, which allows one member
// for raid0 and raid1).
func checkMDLevel(md *Node) error {
	min := map[int]int{0: 1, 1: 1, 4: 2, 5: 2, 6: 4, 10: 2}
	need, ok := min[md.Level]
	if !ok {
		return specErr(md.Path+".level", "%d: mdadm makes levels 0, 1, 4, 5, 6 and 10", md.Level)
	}
	if len(md.Members) < need {
		return specErr(md.Path, "level %d needs at least %d members, %d mdraid nodes name it", md.Level, need, len(md.Members))
	}
	return nil
}

func (p *parser) lvmVG(o *obj) *Node {
	o.typeIs("lvm_vg", true)
	n := &Node{Type: "lvm_vg", Key: o.key, Path: o.path}
	n.Name = o.str("name", o.key)
	if !lvmNameRE.MatchString(n.Name) || n.Name == "." || n.Name == ".." {
		p.specErr(o.at("name"), "%q: lvm names are letters, digits and +_.- (not starting with -)", n.Name)
	}
	p.claim("volume group", n.Name, o.path)
	o.hooks(n)
	for _, lo := range o.subs("lvs") {
		lv := &LV{Path: lo.path}
		lv.Name = lo.str("name", lo.key)
		if !lvmNameRE.MatchString(lv.Name) || lv.Name == "." || lv.Name == ".." {
			p.specErr(lo.at("name"), "%q: lvm names are letters, digits and +_.- (not starting with -)", lv.Name)
		}
		// device-mapper names LVs VG-LV, with - doubled in each.
		p.claim("device-mapper", strings.ReplaceAll(n.Name, "-", "--")+"-"+strings.ReplaceAll(lv.Name, "-", "--"), lo.path)
		lv.Size = lo.str("size", "")
		lv.LVMType = lo.str("lvm_type", "")
		switch lv.LVMType {
		case "", "mirror", "raid0", "raid1", "raid4", "raid5", "raid6", "thin-pool", "thinlv":
		default:
			p.specErr(lo.at("lvm_type"), "%q: disko takes mirror, raid0, raid1, raid4, raid5, raid6, thin-pool or thinlv", lv.LVMType)
		}
		if lv.Size == "" {
			p.specErr(lo.at("size"), "missing: want a size like 20G, 1.5T or 100%%")
		} else if _, msg := lvSizeArgs(lv.Size, lv.LVMType); msg != "" {
			p.specErr(lo.at("size"), "%q: %s", lv.Size, msg)
		}
		lv.Pool = lo.str("pool", "")
		lv.ExtraArgs = lo.words("extraArgs")
		lv.Priority = 1000
		if lv.LVMType == "thin-pool" {
			lv.Priority = 501
		}
		if strings.Contains(lv.Size, "100%") {
			lv.Priority += 251
		}
		if pr := lo.optInt("priority"); pr != nil {
			lv.Priority = *pr
		}
		lv.Device = "/dev/" + n.Name + "/" + lv.Name
		lv.Content = p.content(lo.sub("content"), parent{typ: "lvm_lv", name: lv.Name, dev: lv.Device, top: "lvm_vg." + n.Name})
		if lv.LVMType == "thin-pool" && lv.Content != nil {
			p.specErr(lo.at("content"), "a thin pool has no device of its own to hold content: give it to a thinlv in the pool")
		}
		lo.finish()
		n.LVs = append(n.LVs, lv)
	}
	// disko creates LVs by priority, ties in attr-name order.
	sort.SliceStable(n.LVs, func(i, j int) bool { return n.LVs[i].Priority < n.LVs[j].Priority })
	o.finish()
	return n
}

// checkLVs refuses what lvcreate would refuse half-way: a thin volume
// without its pool, or created before it; raid types with too few PVs.
func checkLVs(vg *Node) error {
	pos := map[string]int{}
	for i, lv := range vg.LVs {
		pos[lv.Name] = i
	}
	minPVs := map[string]int{"mirror": 2, "raid0": 2, "raid1": 2, "raid4": 3, "raid5": 3, "raid6": 5}
	for i, lv := range vg.LVs {
		if lv.LVMType == "thinlv" {
			j, ok := pos[lv.Pool]
			switch {
			case lv.Pool == "":
				return specErr(lv.Path+".pool", "missing: a thinlv names its thin pool (lvcreate --thinpool)")
			case !ok || vg.LVs[j].LVMType != "thin-pool":
				return specErr(lv.Path+".pool", "%q: no LV of lvm_type thin-pool by that name in %s", lv.Pool, vg.Path)
			case j > i:
				return specErr(lv.Path+".priority", "%d: the thin volume would be created before its pool %q (priority %d)", lv.Priority, lv.Pool, vg.LVs[j].Priority)
			}
		}
		if need := minPVs[lv.LVMType]; len(vg.PVs) < need {
			return specErr(lv.Path+".lvm_type", "%q needs at least %d physical volumes, %s has %d", lv.LVMType, need, vg.Path, len(vg.PVs))
		}
	}
	return nil
}

var specialFSTypes = []string{"proc", "sysfs", "tmpfs", "ramfs", "devtmpfs", "devpts"}

func (p *parser) nodev(o *obj) *Node {
	o.typeIs("nodev", true)
	n := &Node{Type: "nodev", Key: o.key, Name: o.key, Path: o.path}
	n.Format = o.str("fsType", "")
	if n.Format == "" || !devNameRE.MatchString(n.Format) {
		p.specErr(o.at("fsType"), "%q: want a filesystem type, like tmpfs", n.Format)
	}
	n.Device = "none"
	if slices.Contains(specialFSTypes, n.Format) {
		n.Device = n.Format
	}
	n.Device = o.str("device", n.Device)
	n.Mountpoint = o.key
	if o.null("mountpoint") {
		n.Mountpoint = ""
	}
	n.Mountpoint = o.str("mountpoint", n.Mountpoint)
	n.MountOptions = o.strs("mountOptions")
	if len(n.MountOptions) == 0 {
		n.MountOptions = []string{"defaults"}
	}
	p.addMount(n.Mountpoint, o.path)
	o.hooks(n)
	o.finish()
	return n
}

// content parses a content node (nil for none).
func (p *parser) content(o *obj, pa parent) *Node {
	if o == nil {
		return nil
	}
	t := o.str("type", "")
	n := &Node{Type: t, Path: o.path, Device: pa.dev}
	if d := o.str("device", ""); d != "" && d != pa.dev {
		p.fail(unsupported(o.at("device"), "%q, another device than its parent's (%s),", d, pa.dev))
	}
	o.hooks(n)
	switch t {
	case "gpt":
		p.gpt(o, n, pa)
	case "table":
		p.table(o, n, pa)
	case "filesystem":
		p.filesystem(o, n)
	case "btrfs":
		p.btrfs(o, n)
	case "swap":
		n.DiscardPolicy = o.str("discardPolicy", "")
		if n.DiscardPolicy != "" && !slices.Contains([]string{"once", "pages", "both"}, n.DiscardPolicy) {
			p.specErr(o.at("discardPolicy"), "%q: disko takes once, pages or both", n.DiscardPolicy)
		}
		n.ExtraArgs = o.words("extraArgs")
		n.RandomEncryption = o.flag("randomEncryption", false)
		n.MountOptions = o.strs("mountOptions")
		o.optInt("priority")
		o.ignore("resumeDevice")
	case "luks":
		p.luks(o, n, pa)
	case "lvm_pv":
		n.VG = o.str("vg", "")
		if n.VG == "" {
			p.specErr(o.at("vg"), "missing: an lvm_pv names its volume group")
		}
		p.vgPVs[n.VG] = append(p.vgPVs[n.VG], pa.dev)
		p.deps["lvm_vg."+n.VG] = append(p.deps["lvm_vg."+n.VG], pa.top)
	case "mdraid":
		n.MD = o.str("name", "")
		if n.MD == "" {
			p.specErr(o.at("name"), "missing: an mdraid member names its md array")
		}
		p.mdMembers[n.MD] = append(p.mdMembers[n.MD], pa.dev)
		p.deps["mdadm."+n.MD] = append(p.deps["mdadm."+n.MD], pa.top)
	case "zfs", "bcachefs":
		p.unsupported(o.path, "type %q", t)
	case "":
		p.specErr(o.path, "missing type")
	default:
		p.specErr(o.at("type"), "%q: disko has gpt, table, filesystem, btrfs, swap, luks, lvm_pv, mdraid, zfs and bcachefs", t)
	}
	if (t == "gpt" || t == "table") && !pa.device {
		p.specErr(o.at("type"), "%q: a partition table cannot go in a partition or a logical volume", t)
	}
	o.finish()
	return n
}

func (p *parser) filesystem(o *obj, n *Node) {
	n.Format = o.str("format", "")
	switch n.Format {
	case "ext2", "ext3", "ext4", "vfat", "xfs", "btrfs", "f2fs", "exfat":
	case "":
		p.specErr(o.at("format"), "missing: want ext4, vfat, xfs...")
	default:
		p.fail(fmt.Errorf("%s: format %q is %w: fleet makes ext2, ext3, ext4, vfat, xfs, btrfs, f2fs and exfat", o.path, n.Format, ErrUnsupported))
	}
	n.ExtraArgs = o.strs("extraArgs") // disko quotes each
	n.Mountpoint = o.absPath("mountpoint")
	n.MountOptions = o.strs("mountOptions")
	if len(n.MountOptions) == 0 {
		n.MountOptions = []string{"defaults"}
	}
	p.addMount(n.Mountpoint, o.path)
}

func (p *parser) btrfs(o *obj, n *Node) {
	n.Format = "btrfs"
	n.ExtraArgs = o.words("extraArgs")
	n.Mountpoint = o.absPath("mountpoint")
	n.MountOptions = o.strs("mountOptions")
	if len(n.MountOptions) == 0 {
		n.MountOptions = []string{"defaults"}
	}
	p.addMount(n.Mountpoint, o.path)
	n.Swapfiles = p.swapfiles(o)
	seen := map[string]string{}
	for _, so := range o.subs("subvolumes") {
		so.typeIs("btrfs_subvol", true)
		sv := &Subvolume{Name: so.str("name", so.key)}
		name := strings.TrimPrefix(sv.Name, "/")
		if name == "" || pathpkg.Clean(name) != strings.TrimSuffix(name, "/") || name == ".." || strings.HasPrefix(name, "../") {
			p.specErr(so.at("name"), "%q: want a path inside the filesystem, like @home or /home/user", sv.Name)
		}
		if prev, ok := seen[pathpkg.Clean(name)]; ok {
			p.specErr(so.path, "subvolume %q: already made by %s", sv.Name, prev)
		}
		seen[pathpkg.Clean(name)] = so.path
		sv.ExtraArgs = so.words("extraArgs")
		sv.Mountpoint = so.absPath("mountpoint")
		sv.MountOptions = so.strs("mountOptions")
		if len(sv.MountOptions) == 0 {
			sv.MountOptions = []string{"defaults"}
		}
		p.addMount(sv.Mountpoint, so.path)
		sv.Swapfiles = p.swapfiles(so)
		so.finish()
		n.Subvolumes = append(n.Subvolumes, sv)
	}
}

func (p *parser) swapfiles(o *obj) []*Swapfile {
	var out []*Swapfile
	for _, so := range o.subs("swap") {
		f := &Swapfile{Path: so.str("path", so.key), Size: so.str("size", "")}
		if !swapfileSizeRE.MatchString(f.Size) {
			p.specErr(so.at("size"), "%q: disko takes a whole number with a unit K, M, G, T or P, like 8G", f.Size)
		}
		if f.Path == "" || strings.Contains(f.Path, "/") || f.Path == "." || f.Path == ".." {
			// disko runs btrfs filesystem mkswapfile on the path as is,
			// which makes no directories: a path with one would fail.
			p.specErr(so.at("path"), "%q: want a file name in its subvolume (no directories), like swapfile", f.Path)
		}
		so.optInt("priority")
		f.Options = so.strs("options")
		so.finish()
		out = append(out, f)
	}
	return out
}

func (p *parser) luks(o *obj, n *Node, pa parent) {
	n.Name = o.str("name", "")
	if n.Name == "" || !devNameRE.MatchString(n.Name) || len(n.Name) > 127 {
		p.specErr(o.at("name"), "%q: want a device-mapper name (letters, digits and +_.:@-)", n.Name)
	}
	p.claim("device-mapper", n.Name, o.path)
	if s := o.sub("settings"); s != nil {
		n.AllowDiscards = s.flag("allowDiscards", false)
		n.BypassWorkqueues = s.flag("bypassWorkqueues", false)
		n.KeyFile = s.str("keyFile", "")
		n.KeyFileSize, n.KeyFileOffset = s.optInt("keyFileSize"), s.optInt("keyFileOffset")
		// The rest configures the booted system's initrd (boot.initrd.luks.devices).
	}
	if kf := o.absPath("keyFile"); kf != "" && n.KeyFile == "" {
		n.KeyFile = kf // deprecated in disko, same meaning
	}
	n.PasswordFile = o.absPath("passwordFile")
	o.flag("askPassword", false)
	o.flag("initrdUnlock", true)
	for i, kf := range o.strs("additionalKeyFiles") {
		if !strings.HasPrefix(kf, "/") {
			p.specErr(fmt.Sprintf("%s[%d]", o.at("additionalKeyFiles"), i), "%q: want an absolute path on the installer", kf)
		}
		n.AdditionalKeyFiles = append(n.AdditionalKeyFiles, kf)
	}
	n.ExtraFormatArgs = o.words("extraFormatArgs")
	n.ExtraOpenArgs = o.words("extraOpenArgs")
	c := o.sub("content")
	if c != nil {
		if t := c.str("type", ""); t == "gpt" || t == "table" {
			p.unsupported(c.path, "a partition table inside luks")
			return
		}
	}
	n.Content = p.content(c, parent{typ: "luks", name: n.Name, dev: "/dev/mapper/" + n.Name, top: pa.top, device: true})
}

func (p *parser) gpt(o *obj, n *Node, pa parent) {
	if pa.typ != "disk" && pa.typ != "mdadm" {
		p.unsupported(o.path, "a gpt inside %s", pa.typ)
		return
	}
	n.EFIGPTFirst = o.flag("efiGptPartitionFirst", true)
	var parts []*Partition
	objs := map[*Partition]*obj{}
	for _, po := range o.subs("partitions") {
		pt := p.partition(po)
		objs[pt] = po
		parts = append(parts, pt)
	}
	if p.err != nil {
		return
	}
	// disko numbers partitions by priority, ties in attr-name order (a
	// stable sort of the attrset's values), each getting the position of
	// the first partition of its name; the evaluated form has _index.
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Priority < parts[j].Priority })
	evaluated := len(parts) > 0
	for _, pt := range parts {
		evaluated = evaluated && pt.Index > 0
	}
	if evaluated {
		sort.SliceStable(parts, func(i, j int) bool { return parts[i].Index < parts[j].Index })
	}
	seen, labels := map[int]string{}, map[string]string{}
	hybrids := 0
	for i, pt := range parts {
		po := objs[pt]
		if !evaluated {
			pt.Index = i + 1
			for j, q := range parts {
				if q.Name == pt.Name {
					pt.Index = j + 1
					break
				}
			}
		}
		if prev, ok := seen[pt.Index]; ok {
			p.specErr(pt.Path, "partition number %d: already used by %s (two partitions named %q)", pt.Index, prev, pt.Name)
			return
		}
		seen[pt.Index] = pt.Path
		if pt.Label == "" {
			pt.Label = PartLabel(pa.typ, pa.name, pt.Name)
		}
		if prev, ok := labels[pt.Label]; ok {
			p.specErr(pt.Path, "label %q: already used by %s", pt.Label, prev)
			return
		}
		labels[pt.Label] = pt.Path
		if fillsRest(pt) && i != len(parts)-1 && parts[i+1].Start == "0" {
			what := fmt.Sprintf("end %q", pt.End)
			if pt.Size == "100%" {
				what = `size "100%"`
			} else if pt.Size == "" && pt.End == "+0" {
				what = "no size (it fills the free space)"
			}
			p.fail(fmt.Errorf("%s: %s must be the last partition (it is number %d of %d, and %s starts after it): %w\nhint: give it the highest priority", pt.Path, what, i+1, len(parts), parts[i+1].Path, ErrSpec))
			return
		}
		switch {
		case pt.Device != "":
		case pt.UUID != "":
			pt.Device = "/dev/disk/by-partuuid/" + pt.UUID
		case pa.typ == "mdadm":
			// disko's workaround: partlabels of md partitions get no link.
			pt.Device = fmt.Sprintf("/dev/disk/by-id/md-name-any:%s-part%d", pa.name, pt.Index)
		default:
			pt.Device = "/dev/disk/by-partlabel/" + udevEscape(pt.Label)
		}
		if pt.Hybrid != nil {
			hybrids++
			if pa.typ != "disk" {
				p.unsupported(po.at("hybrid"), "a hybrid MBR on an md array")
			}
		}
		pt.Content = p.content(po.sub("content"), parent{typ: "partition", name: pt.Name, dev: pt.Device, top: pa.top})
		po.finish()
	}
	if hybrids > 3 {
		p.specErr(o.at("partitions"), "%d partitions are in the hybrid MBR: sgdisk -h takes three at most", hybrids)
	}
	for _, pt := range parts {
		// disko's sfdisk calls address MBR entry number INDEX (the gpt
		// partition's number); the hybrid MBR has one entry per hybrid
		// partition and the EFI entry.
		if h := pt.Hybrid; h != nil && (h.MBRType != "" || h.Bootable) && pt.Index > hybrids+1 {
			p.fail(fmt.Errorf("%s.hybrid: disko sets the type and boot flag of MBR entry %d, the partition's number, and the hybrid MBR has %d entries: %w\nhint: give the hybrid partitions the lowest priorities, so they come first", pt.Path, pt.Index, hybrids+1, ErrSpec))
			return
		}
	}
	n.Partitions = parts
}

// fillsRest reports whether sgdisk makes pt reach the end of the free
// space, leaving none for a partition after it.
func fillsRest(pt *Partition) bool {
	return pt.End == "-0" || pt.End == "+0" || pt.End == "0"
}

func (p *parser) partition(o *obj) *Partition {
	pt := &Partition{Name: o.key, Path: o.path}
	pt.Name = o.str("name", o.key)
	pt.Index = o.int("_index", 0)
	pt.Size = o.str("size", "")
	if pt.Size != "" && pt.Size != "100%" {
		if !sizeRE.MatchString(pt.Size) {
			o.p.specErr(o.at("size"), "%q: disko takes a whole number with an optional unit K, M, G, T or P (like 512M), or 100%%", pt.Size)
		} else if _, ok := parseSize(pt.Size); !ok {
			o.p.specErr(o.at("size"), "%q: larger than any disk", pt.Size)
		}
	}
	pt.Start = o.str("start", "0")
	pt.End = o.str("end", "")
	if pt.End == "" {
		pt.End = "+0" // disko's default size is "0": sgdisk's +0 fills the free space
		switch {
		case pt.Size == "100%":
			pt.End = "-0"
		case pt.Size != "":
			pt.End = "+" + pt.Size
		}
	}
	for _, k := range []string{"start", "end"} {
		v := map[string]string{"start": pt.Start, "end": pt.End}[k]
		if !sgdiskPosRE.MatchString(v) {
			o.p.specErr(o.at(k), "%q: sgdisk takes a whole number of sectors, or one with a unit K, M, G, T, P or s, after an optional + or -", v)
		}
	}
	defAlign := 0
	if strings.HasSuffix(pt.Start, "s") || strings.HasSuffix(pt.End, "s") {
		defAlign = 1
	}
	pt.Alignment = o.int("alignment", defAlign)
	if pt.Alignment < 0 || pt.Alignment > 1<<20 {
		o.p.specErr(o.at("alignment"), "%d: want a number of sectors (0 for sgdisk's default)", pt.Alignment)
	}
	pt.TypeCode = o.str("type", "")
	if pt.TypeCode == "" {
		pt.TypeCode = "8300"
		if c := o.sub("content"); c != nil && c.str("type", "") == "swap" {
			pt.TypeCode = "8200"
		}
	}
	if !codeRE.MatchString(pt.TypeCode) && !guidRE.MatchString(pt.TypeCode) {
		o.p.specErr(o.at("type"), "%q: want a 4-hex sgdisk code (EF00, 8300...) or a GUID", pt.TypeCode)
	}
	// disko compares the type as written: "ef02" gets the default 1000.
	switch pr := o.optInt("priority"); {
	case pr != nil:
		pt.Priority = *pr
	case pt.Size == "100%":
		pt.Priority = 9001
	case pt.TypeCode == "EF02":
		pt.Priority = 100
	default:
		pt.Priority = 1000
	}
	pt.Label = o.str("label", "")
	if utf8.RuneCountInString(pt.Label) > 36 {
		o.p.specErr(o.at("label"), "%q: longer than the 36 characters a GPT name holds", pt.Label)
	}
	for _, c := range []byte(PartLabel("x", "", pt.Name) + pt.Label) {
		if c < 0x20 || c >= 0x7f {
			o.p.specErr(o.path, "name %q or label %q: disko escapes printable ASCII only", pt.Name, pt.Label)
			break
		}
	}
	pt.UUID = o.str("uuid", "")
	if pt.UUID != "" && !guidRE.MatchString(pt.UUID) {
		o.p.specErr(o.at("uuid"), "%q: not a GUID", pt.UUID)
	}
	pt.Attributes = o.ints("attributes")
	pt.Device = o.str("device", "")
	if h := o.sub("hybrid"); h != nil {
		pt.Hybrid = &Hybrid{MBRType: h.str("mbrPartitionType", ""), Bootable: h.flag("mbrBootableFlag", false)}
		if pt.Hybrid.MBRType != "" && !mbrTypeRE.MatchString(pt.Hybrid.MBRType) {
			o.p.specErr(h.at("mbrPartitionType"), "%q: want an MBR type code in hex, like 0x0c", pt.Hybrid.MBRType)
		}
		h.finish()
	}
	o.used["content"] = true // parsed once the partition has its number
	return pt
}

var partedFlags = []string{"boot", "root", "swap", "hidden", "raid", "lvm", "lba", "hp-service", "palo", "prep",
	"msftres", "bios_grub", "atvrecv", "diag", "legacy_boot", "msftdata", "irst", "esp", "chromeos_kernel",
	"bls_boot", "linux-home", "no_automount"}

var partedFSTypes = []string{"bcachefs", "btrfs", "ext2", "ext3", "ext4", "fat16", "fat32", "hfs", "hfs+",
	"linux-swap", "ntfs", "reiserfs", "udf", "xfs"}

// table is disko's legacy table: parted makes a gpt or msdos label and
// its partitions in list order (boards whose firmware reads an MBR, like
// a Raspberry Pi's, need msdos).
func (p *parser) table(o *obj, n *Node, pa parent) {
	if pa.typ != "disk" {
		p.unsupported(o.path, "a legacy table inside %s", pa.typ)
		return
	}
	n.TableFormat = o.str("format", "gpt")
	if n.TableFormat != "gpt" && n.TableFormat != "msdos" {
		p.specErr(o.at("format"), "%q: disko takes gpt or msdos", n.TableFormat)
	}
	for i, po := range o.items("partitions") {
		tp := &TablePartition{Path: po.path, Index: po.int("_index", i+1)}
		if tp.Index != i+1 {
			p.specErr(po.at("_index"), "%d: a table partition is numbered by its place in the list (%d)", tp.Index, i+1)
		}
		tp.PartType = po.str("part-type", "primary")
		switch tp.PartType {
		case "primary":
		case "logical", "extended":
			p.unsupported(po.at("part-type"), "%q (the kernel numbers logical partitions from 5, disko's devices do not)", tp.PartType)
		default:
			p.specErr(po.at("part-type"), "%q: disko takes primary, logical or extended", tp.PartType)
		}
		tp.FSType = po.str("fs-type", "")
		if tp.FSType != "" && !slices.Contains(partedFSTypes, tp.FSType) {
			p.specErr(po.at("fs-type"), "%q: disko takes %s", tp.FSType, strings.Join(partedFSTypes, ", "))
		}
		tp.Name = po.str("name", "")
		if n.TableFormat == "gpt" && tp.Name == "" {
			p.specErr(po.at("name"), "missing: a partition of a gpt table needs a name")
		}
		tp.Start, tp.End = po.str("start", "0%"), po.str("end", "100%")
		for k, v := range map[string]string{"start": tp.Start, "end": tp.End} {
			if !partedPosRE.MatchString(v) {
				p.specErr(po.at(k), "%q: parted takes a number with an optional unit (s, B, kB, MB, MiB, GB, GiB, TB, TiB) or a percentage of the disk", v)
			}
		}
		tp.Flags = po.strs("flags")
		for _, f := range tp.Flags {
			if !slices.Contains(partedFlags, f) {
				p.specErr(po.at("flags"), "%q: parted's flags are %s", f, strings.Join(partedFlags, ", "))
			}
		}
		tp.Bootable = po.flag("bootable", false)
		dev, ok := deviceNumbering(pa.dev, tp.Index)
		if !ok {
			p.unsupported(o.path, "a table on %s (disko numbers the partitions of /dev/sdX, /dev/vdX, /dev/xvdX, /dev/disk/..., /dev/nvme..., /dev/mmcblk..., /dev/md/..., /dev/mapper/... and /dev/loopN only)", pa.dev)
			return
		}
		tp.Device = dev
		tp.Content = p.content(po.sub("content"), parent{typ: "partition", name: tp.Name, dev: dev, top: pa.top})
		po.finish()
		n.TableParts = append(n.TableParts, tp)
	}
	if n.TableFormat == "msdos" && len(n.TableParts) > 4 {
		p.specErr(o.at("partitions"), "%d partitions: an msdos table holds 4 primary partitions", len(n.TableParts))
	}
}

func (p *parser) addMount(mp, path string) {
	if mp == "" {
		return
	}
	if !strings.HasPrefix(mp, "/") {
		p.specErr(path, "mountpoint %q: must be an absolute path", mp)
		return
	}
	// Unclean paths would slip past the check for a mountpoint used twice
	// ("/home/" and "/home"), and ".." would reach outside the new root.
	if clean := pathpkg.Clean(mp); clean != mp {
		p.specErr(path, "mountpoint %q: write it as %q", mp, clean)
		return
	}
	if prev, ok := p.mounts[mp]; ok {
		p.specErr(path, "mountpoint %q: already used by %s", mp, prev)
		return
	}
	p.mounts[mp] = path
}

// Load reads a spec file: JSON in either form, or a .nix file evaluated with
// nix-instantiate through r (a disko file is an attrset, or a function
// taking an attrset, with disko.devices).
func Load(ctx context.Context, r remote.Runner, file string) (*Spec, error) {
	if strings.HasSuffix(file, ".nix") {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		expr := fmt.Sprintf(`let f = import %s; v = if builtins.isFunction f then f { lib = (import <nixpkgs> {}).lib; } else f; in v.disko.devices`, nixPath(abs))
		res, err := r.Run(ctx, remote.Cmd{Args: []string{"nix-instantiate", "--eval", "--strict", "--json", "-E", expr}})
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w\nhint: export the layout as JSON with nix eval --json -f %s disko.devices", file, err, file)
		}
		return Parse(res.Stdout)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

var plainPathRE = regexp.MustCompile(`^[A-Za-z0-9._+/-]+$`)

// nixPath writes an absolute path as a Nix path literal (quoted when needed).
func nixPath(p string) string {
	if plainPathRE.MatchString(p) {
		return p
	}
	return `(/. + "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(p) + `")`
}
