package disko

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	pathpkg "path"
	"slices"
	"sort"
	"strings"
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
	// zfsMembers: pool name -> its members (parse_zfs.go)
	zfsMembers map[string][]zfsMember
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
		return nil, specErr("disko.devices", "%s: want an attrset of disk, mdadm, lvm_vg, nodev, zpool", show(v))
	}
	at := func(k string) string { return k }
	for _, k := range []string{"bcachefs_filesystems", "bcachefs"} {
		if objs := top.subsAt(k, at(k)); len(objs) > 0 {
			return nil, fmt.Errorf("%s: bcachefs is %w", objs[0].path, ErrUnsupported)
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
	for _, o := range top.subsAt("zpool", "zpool") {
		p.spec.Zpools = append(p.spec.Zpools, p.zpool(o))
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
	if p.zfsRefs(); p.err != nil {
		return
	}
	if _, ok := orderDevices(p.spec); !ok {
		var names []string
		for _, n := range slices.Concat(p.spec.MDs, p.spec.VGs, p.spec.Zpools) {
			names = append(names, n.Path)
		}
		p.specErr("disko.devices", "%s are built on each other in a cycle (an array, volume group or pool inside itself)", strings.Join(names, ", "))
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
