// Package disko turns a disko disk layout (disko's JSON, in the raw user
// form or the evaluated config.disko.devices form) into real, verified block
// devices.
//
// The model has three layers. [Parse] reads the JSON into a typed tree of
// [Node]s and fills in disko's defaults exactly as disko does (partition
// priority and numbering, labels with the 36-character sha256 rule, device
// paths), validating everything before any disk is touched. [BuildPlan]
// turns the tree into an ordered list of [Step]s for a mode (destroy, format,
// mount, unmount), each with its exact commands. [Apply] runs a plan through a
// remote.Runner, probing instead of relying on udev, checking each disk is
// safe to touch before any destructive step, reusing what already matches in
// the non-destructive format mode, and verifying every step's result (sgdisk,
// blkid, /proc/self/mountinfo) the way Ignition does.
//
// disko's preCreateHook and postCreateHook run where disko runs them (see
// BuildPlan's hook steps). Mount and unmount hooks, zfs and bcachefs, and
// msdos tables are refused by name ([ErrUnsupported]), never skipped.
package disko

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// ErrSpec marks an invalid layout; every validation error wraps it.
var ErrSpec = errors.New("invalid disko spec")

// ErrUnsupported marks a layout type fleet cannot handle yet (zfs, bcachefs).
var ErrUnsupported = errors.New("not supported yet")

// Node is one node of the layout: a top-level device (disk, mdadm, lvm_vg,
// nodev) or a content node (gpt, filesystem, btrfs, swap, luks, lvm_pv,
// mdraid). Only the fields of its Type are set.
type Node struct {
	Type string // disk, gpt, filesystem, btrfs, swap, luks, lvm_pv, lvm_vg, mdraid, mdadm, nodev
	Name string // attr name (disk, partition, lv, vg, md, nodev name); luks: mapper name
	Path string // node path in the spec, for errors: disk.main.content.partitions.root
	// Device is where this node lives: the disk, the partition, /dev/mapper/N...
	Device string

	Content *Node // disk, partition, luks, lv, mdadm content

	// gpt
	Partitions []*Partition
	// filesystem / btrfs / nodev
	Format       string
	Mountpoint   string
	MountOptions []string
	ExtraArgs    []string
	Subvolumes   []*Subvolume
	// swap
	DiscardPolicy string
	// luks
	AllowDiscards      bool
	KeyFile            string
	PasswordFile       string
	AdditionalKeyFiles []string
	ExtraFormatArgs    []string
	ExtraOpenArgs      []string
	// lvm_pv: VG; mdraid: Name of the md array (in MD)
	VG string
	MD string
	// lvm_vg
	LVs []*LV
	// mdadm
	Level    int
	Metadata string
	Members  []string // mdadm: member devices, filled from mdraid nodes
	PVs      []string // lvm_vg: pv devices, filled from lvm_pv nodes

	// Shell commands disko runs (in bash) before this node and its
	// content are created, and after; "" for none.
	PreCreateHook, PostCreateHook string
}

// Partition is one gpt partition with disko's defaults filled in.
type Partition struct {
	Name       string
	Path       string
	Index      int    // 1-based partition number
	Priority   int    // ordering key
	Size       string // "100%" or N[KMGTP]; "" when start/end given
	Start, End string // sgdisk --new start and end
	TypeCode   string // sgdisk code (8300) or GUID
	Label      string
	UUID       string
	Attributes []int
	Device     string // disko's device path (/dev/disk/by-partlabel/LABEL)
	Content    *Node
}

// Bytes is the partition's size in bytes, 0 for "100%" or unknown.
func (p *Partition) Bytes() int64 { b, _ := parseSize(p.Size); return b }

// Subvolume is a btrfs subvolume.
type Subvolume struct {
	Name         string
	Mountpoint   string
	MountOptions []string
}

// LV is an lvm logical volume.
type LV struct {
	Name     string
	Path     string
	Size     string // 16G, 100%FREE, 50%VG
	LVMType  string
	Priority int
	Device   string // /dev/VG/LV
	Content  *Node
}

// Spec is a whole layout.
type Spec struct {
	Disks  []*Node // alphabetical
	MDs    []*Node
	VGs    []*Node
	Nodevs []*Node
}

// Top lists the top-level devices in disko's order: disks, mdadm, lvm_vg, nodev.
func (s *Spec) Top() []*Node {
	var all []*Node
	all = append(all, s.Disks...)
	all = append(all, s.MDs...)
	all = append(all, s.VGs...)
	return append(all, s.Nodevs...)
}

// raw is disko's JSON node, in either form.
type raw struct {
	Type       string          `json:"type"`
	Device     string          `json:"device"`
	Name       string          `json:"name"`
	Content    *raw            `json:"content"`
	Partitions map[string]*raw `json:"partitions"`
	Size       json.RawMessage `json:"size"`
	Start      string          `json:"start"`
	End        string          `json:"end"`
	Priority   *int            `json:"priority"`
	Label      string          `json:"label"`
	UUID       string          `json:"uuid"`
	Attributes []int           `json:"attributes"`
	Index      int             `json:"_index"`

	Format       string          `json:"format"`
	Mountpoint   string          `json:"mountpoint"`
	MountOptions []string        `json:"mountOptions"`
	ExtraArgs    []string        `json:"extraArgs"`
	Subvolumes   map[string]*raw `json:"subvolumes"`
	FsType       string          `json:"fsType"`

	DiscardPolicy string `json:"discardPolicy"`

	Settings struct {
		AllowDiscards bool   `json:"allowDiscards"`
		KeyFile       string `json:"keyFile"`
	} `json:"settings"`
	PasswordFile       string   `json:"passwordFile"`
	AdditionalKeyFiles []string `json:"additionalKeyFiles"`
	ExtraFormatArgs    []string `json:"extraFormatArgs"`
	ExtraOpenArgs      []string `json:"extraOpenArgs"`

	VG      string          `json:"vg"`
	LVs     map[string]*raw `json:"lvs"`
	LVMType string          `json:"lvm_type"`

	Level    int    `json:"level"`
	Metadata string `json:"metadata"`

	PreCreateHook   string `json:"preCreateHook"`
	PostCreateHook  string `json:"postCreateHook"`
	PreMountHook    string `json:"preMountHook"`
	PostMountHook   string `json:"postMountHook"`
	PreUnmountHook  string `json:"preUnmountHook"`
	PostUnmountHook string `json:"postUnmountHook"`
}

// hooks takes r's create hooks into n and refuses the hooks fleet does not
// run: a layout whose mount hooks were silently skipped would boot
// differently from disko's.
func hooks(r *raw, n *Node, path string) error {
	for _, h := range []struct{ name, script string }{
		{"preMountHook", r.PreMountHook}, {"postMountHook", r.PostMountHook},
		{"preUnmountHook", r.PreUnmountHook}, {"postUnmountHook", r.PostUnmountHook},
	} {
		if strings.TrimSpace(h.script) != "" {
			return fmt.Errorf("%s: %s is %w: fleet runs preCreateHook and postCreateHook only (hint: do it in postCreateHook, or in the installed system)", path, h.name, ErrUnsupported)
		}
	}
	n.PreCreateHook, n.PostCreateHook = strings.TrimSpace(r.PreCreateHook), strings.TrimSpace(r.PostCreateHook)
	return nil
}

type rawTop struct {
	Disk     map[string]*raw            `json:"disk"`
	MDadm    map[string]*raw            `json:"mdadm"`
	LVMVG    map[string]*raw            `json:"lvm_vg"`
	Zpool    map[string]json.RawMessage `json:"zpool"`
	Nodev    map[string]*raw            `json:"nodev"`
	Bcachefs map[string]json.RawMessage `json:"bcachefs"`
}

func specErr(path, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", path, fmt.Sprintf(format, args...), ErrSpec)
}

// Parse reads disko's devices JSON (the value of disko.devices) in either
// form and returns the layout with disko's defaults filled in.
func Parse(data []byte) (*Spec, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	var top rawTop
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("parse disko JSON: %v: %w", err, ErrSpec)
	}
	for _, n := range sortedKeys(top.Zpool) {
		return nil, fmt.Errorf("zpool.%s: zfs is %w (hint: use gpt with ext4, xfs or btrfs)", n, ErrUnsupported)
	}
	for _, n := range sortedKeys(top.Bcachefs) {
		return nil, fmt.Errorf("bcachefs.%s: bcachefs is %w", n, ErrUnsupported)
	}
	p := &parser{spec: &Spec{}, mdMembers: map[string][]string{}, vgPVs: map[string][]string{}}
	for _, name := range sortedKeys(top.Disk) {
		r := top.Disk[name]
		path := "disk." + name
		if r == nil {
			return nil, specErr(path, "empty disk")
		}
		if r.Type != "" && r.Type != "disk" {
			return nil, specErr(path, "type %q: want \"disk\"", r.Type)
		}
		if !strings.HasPrefix(r.Device, "/") {
			return nil, specErr(path, "device %q: must be an absolute path", r.Device)
		}
		n := &Node{Type: "disk", Name: strings.ReplaceAll(name, "/", "_"), Path: path, Device: r.Device}
		if err := hooks(r, n, path); err != nil {
			return nil, err
		}
		c, err := p.content(r.Content, path+".content", "disk", n.Name, r.Device)
		if err != nil {
			return nil, err
		}
		n.Content = c
		p.spec.Disks = append(p.spec.Disks, n)
	}
	for _, name := range sortedKeys(top.MDadm) {
		r := top.MDadm[name]
		path := "mdadm." + name
		if r == nil {
			return nil, specErr(path, "empty mdadm")
		}
		dev := "/dev/md/" + name
		n := &Node{Type: "mdadm", Name: name, Path: path, Device: dev, Level: r.Level, Metadata: r.Metadata}
		if n.Level == 0 {
			n.Level = 1
		}
		if n.Metadata == "" {
			n.Metadata = "default"
		}
		if err := hooks(r, n, path); err != nil {
			return nil, err
		}
		c, err := p.content(r.Content, path+".content", "mdadm", name, dev)
		if err != nil {
			return nil, err
		}
		n.Content = c
		p.spec.MDs = append(p.spec.MDs, n)
	}
	for _, name := range sortedKeys(top.LVMVG) {
		r := top.LVMVG[name]
		path := "lvm_vg." + name
		if r == nil {
			return nil, specErr(path, "empty lvm_vg")
		}
		n := &Node{Type: "lvm_vg", Name: name, Path: path}
		if err := hooks(r, n, path); err != nil {
			return nil, err
		}
		for _, lvName := range sortedKeys(r.LVs) {
			lr := r.LVs[lvName]
			lpath := path + ".lvs." + lvName
			size, err := rawString(lr.Size)
			if err != nil || !lvSizeRE.MatchString(size) {
				return nil, specErr(lpath, "size %q: want N[KMGTP], N%%FREE or N%%VG", string(lr.Size))
			}
			lv := &LV{Name: lvName, Path: lpath, Size: size, LVMType: lr.LVMType, Device: "/dev/" + name + "/" + lvName, Priority: 1000}
			if strings.HasSuffix(size, "%FREE") || strings.HasSuffix(size, "%VG") {
				lv.Priority = 9001
			}
			if lr.Priority != nil {
				lv.Priority = *lr.Priority
			}
			c, err := p.content(lr.Content, lpath+".content", "lvm_lv", lvName, lv.Device)
			if err != nil {
				return nil, err
			}
			lv.Content = c
			n.LVs = append(n.LVs, lv)
		}
		sort.SliceStable(n.LVs, func(i, j int) bool { return n.LVs[i].Priority < n.LVs[j].Priority })
		p.spec.VGs = append(p.spec.VGs, n)
	}
	for _, name := range sortedKeys(top.Nodev) {
		r := top.Nodev[name]
		path := "nodev." + name
		if r == nil {
			return nil, specErr(path, "empty nodev")
		}
		n := &Node{Type: "nodev", Name: name, Path: path, Format: r.FsType, Mountpoint: r.Mountpoint, MountOptions: r.MountOptions}
		if n.Format == "" {
			n.Format = "tmpfs"
		}
		if err := hooks(r, n, path); err != nil {
			return nil, err
		}
		if n.Mountpoint == "" {
			n.Mountpoint = name
		}
		if err := p.addMount(n.Mountpoint, path); err != nil {
			return nil, err
		}
		if len(n.MountOptions) == 0 {
			n.MountOptions = []string{"defaults"}
		}
		n.Device = n.Format
		p.spec.Nodevs = append(p.spec.Nodevs, n)
	}
	// Cross references: mdraid members and lvm_pv members.
	for _, md := range p.spec.MDs {
		md.Members = p.mdMembers[md.Name]
		if len(md.Members) == 0 {
			return nil, specErr(md.Path, "no mdraid member refers to it")
		}
		delete(p.mdMembers, md.Name)
	}
	for _, name := range sortedKeys(p.mdMembers) {
		return nil, specErr("mdadm."+name, "referenced by an mdraid member but not defined")
	}
	for _, vg := range p.spec.VGs {
		vg.PVs = p.vgPVs[vg.Name]
		if len(vg.PVs) == 0 {
			return nil, specErr(vg.Path, "no lvm_pv refers to it")
		}
		delete(p.vgPVs, vg.Name)
	}
	for _, name := range sortedKeys(p.vgPVs) {
		return nil, specErr("lvm_vg."+name, "referenced by an lvm_pv but not defined")
	}
	return p.spec, nil
}

type parser struct {
	spec      *Spec
	mdMembers map[string][]string
	vgPVs     map[string][]string
	mounts    map[string]string // mountpoint -> node path
}

func (p *parser) addMount(mp, path string) error {
	if mp == "" {
		return nil
	}
	if !strings.HasPrefix(mp, "/") {
		return specErr(path, "mountpoint %q: must be an absolute path", mp)
	}
	// Unclean paths would slip past the check for a mountpoint used twice
	// ("/home/" and "/home"), and ".." would reach outside the new root.
	if clean := pathpkg.Clean(mp); clean != mp {
		return specErr(path, "mountpoint %q: write it as %q", mp, clean)
	}
	if p.mounts == nil {
		p.mounts = map[string]string{}
	}
	if prev, ok := p.mounts[mp]; ok {
		return specErr(path, "mountpoint %q: already used by %s", mp, prev)
	}
	p.mounts[mp] = path
	return nil
}

var (
	sizeRE    = regexp.MustCompile(`^([0-9]+)([KMGTP]?)$`)
	lvSizeRE  = regexp.MustCompile(`^([0-9]+[KMGTP]?|[0-9]+%(FREE|VG))$`)
	codeRE    = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
	guidRE    = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
	fsFormats = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "vfat": true, "xfs": true, "btrfs": true, "f2fs": true}
)

// parseSize turns N[KMGTP] into bytes (binary units, as sgdisk reads them).
func parseSize(s string) (int64, bool) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50}[m[2]]
	if m[2] == "" {
		// sgdisk reads a bare number as sectors.
		shift = 9
	}
	if n > math.MaxInt64>>shift {
		return 0, false // more bytes than an int64 holds: no disk is that big
	}
	return n << shift, true
}

func rawString(m json.RawMessage) (string, error) {
	if len(m) == 0 || string(m) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(m, &n); err == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("not a string")
}

// PartLabel is disko's default partition label: parentType-parentName-name,
// or the first 36 hex characters of its sha256 when longer than 36 characters
// (the GPT name field holds 36 UTF-16 characters).
func PartLabel(parentType, parentName, name string) string {
	l := parentType + "-" + parentName + "-" + name
	if len(l) > 36 {
		sum := sha256.Sum256([]byte(l))
		return hex.EncodeToString(sum[:])[:36]
	}
	return l
}

func (p *parser) content(r *raw, path, parentType, parentName, dev string) (*Node, error) {
	if r == nil {
		return nil, nil
	}
	n := &Node{Type: r.Type, Path: path, Device: dev}
	if err := hooks(r, n, path); err != nil {
		return nil, err
	}
	switch r.Type {
	case "gpt", "table":
		if r.Type == "table" {
			return nil, specErr(path, "type \"table\" (msdos) is %v", ErrUnsupported)
		}
		var parts []*Partition
		for _, name := range sortedKeys(r.Partitions) {
			pr := r.Partitions[name]
			ppath := path + ".partitions." + name
			if pr == nil {
				return nil, specErr(ppath, "empty partition")
			}
			pt, err := p.partition(pr, ppath, parentType, parentName, name)
			if err != nil {
				return nil, err
			}
			parts = append(parts, pt)
		}
		// Numbering: by priority, ties in attr-name order (already sorted),
		// unless the evaluated form carries _index.
		sort.SliceStable(parts, func(i, j int) bool { return parts[i].Priority < parts[j].Priority })
		evaluated := len(parts) > 0
		for _, pt := range parts {
			if pt.Index == 0 {
				evaluated = false
			}
		}
		if evaluated {
			sort.SliceStable(parts, func(i, j int) bool { return parts[i].Index < parts[j].Index })
		}
		seen := map[int]string{}
		labels := map[string]string{}
		for i, pt := range parts {
			if !evaluated {
				pt.Index = i + 1
			}
			if prev, ok := seen[pt.Index]; ok {
				return nil, specErr(pt.Path, "_index %d: already used by %s", pt.Index, prev)
			}
			seen[pt.Index] = pt.Path
			if prev, ok := labels[pt.Label]; ok {
				return nil, specErr(pt.Path, "label %q: already used by %s", pt.Label, prev)
			}
			labels[pt.Label] = pt.Path
			if pt.Size == "100%" && i != len(parts)-1 {
				return nil, specErr(pt.Path, "size \"100%%\" must be the last partition (it is number %d of %d; hint: give it the highest priority)", i+1, len(parts))
			}
		}
		n.Partitions = parts
		// Partition devices need numbering first; the partition content
		// was parsed with the by-partlabel path already.
	case "filesystem":
		if !fsFormats[r.Format] {
			if r.Format == "zfs" || r.Format == "bcachefs" {
				return nil, fmt.Errorf("%s: format %q is %w", path, r.Format, ErrUnsupported)
			}
			return nil, specErr(path, "format %q: want one of ext2, ext3, ext4, vfat, xfs, btrfs, f2fs", r.Format)
		}
		n.Format, n.Mountpoint, n.ExtraArgs = r.Format, r.Mountpoint, r.ExtraArgs
		n.MountOptions = r.MountOptions
		if len(n.MountOptions) == 0 {
			n.MountOptions = []string{"defaults"}
		}
		if err := p.addMount(n.Mountpoint, path); err != nil {
			return nil, err
		}
	case "btrfs":
		n.Format, n.Mountpoint, n.ExtraArgs = "btrfs", r.Mountpoint, r.ExtraArgs
		n.MountOptions = r.MountOptions
		if len(n.MountOptions) == 0 {
			n.MountOptions = []string{"defaults"}
		}
		if err := p.addMount(n.Mountpoint, path); err != nil {
			return nil, err
		}
		for _, name := range sortedKeys(r.Subvolumes) {
			sr := r.Subvolumes[name]
			sv := &Subvolume{Name: name}
			if sr != nil {
				if sr.Name != "" {
					sv.Name = sr.Name
				}
				sv.Mountpoint, sv.MountOptions = sr.Mountpoint, sr.MountOptions
			}
			if len(sv.MountOptions) == 0 {
				sv.MountOptions = []string{"defaults"}
			}
			if err := p.addMount(sv.Mountpoint, path+".subvolumes."+name); err != nil {
				return nil, err
			}
			n.Subvolumes = append(n.Subvolumes, sv)
		}
	case "swap":
		n.DiscardPolicy, n.ExtraArgs = r.DiscardPolicy, r.ExtraArgs
	case "luks":
		if r.Name == "" {
			return nil, specErr(path, "luks needs a name")
		}
		n.Name = r.Name
		n.AllowDiscards, n.KeyFile, n.PasswordFile = r.Settings.AllowDiscards, r.Settings.KeyFile, r.PasswordFile
		n.AdditionalKeyFiles, n.ExtraFormatArgs, n.ExtraOpenArgs = r.AdditionalKeyFiles, r.ExtraFormatArgs, r.ExtraOpenArgs
		c, err := p.content(r.Content, path+".content", "luks", r.Name, "/dev/mapper/"+r.Name)
		if err != nil {
			return nil, err
		}
		n.Content = c
	case "lvm_pv":
		if r.VG == "" {
			return nil, specErr(path, "lvm_pv needs vg")
		}
		n.VG = r.VG
		p.vgPVs[r.VG] = append(p.vgPVs[r.VG], dev)
	case "mdraid":
		if r.Name == "" {
			return nil, specErr(path, "mdraid needs name")
		}
		n.MD = r.Name
		p.mdMembers[r.Name] = append(p.mdMembers[r.Name], dev)
	case "zfs", "bcachefs":
		return nil, fmt.Errorf("%s: type %q is %w", path, r.Type, ErrUnsupported)
	case "":
		return nil, specErr(path, "missing type")
	default:
		return nil, specErr(path, "unknown type %q", r.Type)
	}
	return n, nil
}

func (p *parser) partition(r *raw, path, parentType, parentName, name string) (*Partition, error) {
	pt := &Partition{Name: name, Path: path, Index: r.Index, Start: r.Start, End: r.End, Label: r.Label, UUID: r.UUID, Attributes: r.Attributes}
	if r.Name != "" {
		pt.Name = r.Name
	}
	size, err := rawString(r.Size)
	if err != nil {
		return nil, specErr(path, "size %s: want a string like \"512M\" or \"100%%\"", string(r.Size))
	}
	pt.Size = size
	if size != "" && size != "100%" {
		if _, ok := parseSize(size); !ok {
			if sizeRE.MatchString(size) {
				return nil, specErr(path, "size %q: larger than any disk", size)
			}
			return nil, specErr(path, "size %q: want N[KMGTP] or \"100%%\"", size)
		}
	}
	if pt.Start == "" {
		pt.Start = "0"
	}
	if pt.End == "" {
		switch {
		case size == "100%":
			pt.End = "-0"
		case size != "":
			pt.End = "+" + size
		default:
			return nil, specErr(path, "needs size or end")
		}
	}
	pt.TypeCode = r.Type
	if pt.TypeCode == "" {
		pt.TypeCode = "8300"
		if r.Content != nil && r.Content.Type == "swap" {
			pt.TypeCode = "8200"
		}
	}
	if !codeRE.MatchString(pt.TypeCode) && !guidRE.MatchString(pt.TypeCode) {
		return nil, specErr(path, "type %q: want a 4-hex sgdisk code (EF00, 8300...) or a GUID", pt.TypeCode)
	}
	pt.TypeCode = strings.ToUpper(pt.TypeCode)
	switch {
	case r.Priority != nil:
		pt.Priority = *r.Priority
	case pt.TypeCode == "EF02":
		pt.Priority = 100
	case size == "100%":
		pt.Priority = 9001
	default:
		pt.Priority = 1000
	}
	if pt.Label == "" {
		pt.Label = PartLabel(parentType, parentName, name)
	} else if len(pt.Label) > 36 {
		return nil, specErr(path, "label %q: longer than 36 characters", pt.Label)
	}
	if pt.UUID != "" && !guidRE.MatchString(pt.UUID) {
		return nil, specErr(path, "uuid %q: not a GUID", pt.UUID)
	}
	if pt.UUID != "" {
		pt.Device = "/dev/disk/by-partuuid/" + strings.ToLower(pt.UUID)
	} else {
		pt.Device = "/dev/disk/by-partlabel/" + udevEscape(pt.Label)
	}
	if r.Device != "" {
		pt.Device = r.Device
	}
	c, err := p.content(r.Content, path+".content", "partition", pt.Name, pt.Device)
	if err != nil {
		return nil, err
	}
	pt.Content = c
	return pt, nil
}

// udevEscape escapes a label the way udev names by-partlabel links.
func udevEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte("#+-.:=@_", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
			return nil, fmt.Errorf("evaluate %s: %w (hint: export the layout as JSON with nix eval --json -f %s disko.devices)", file, err, file)
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

// nixPath writes an absolute path as a Nix path literal (quoted when needed).
func nixPath(p string) string {
	if regexp.MustCompile(`^[A-Za-z0-9._+/-]+$`).MatchString(p) {
		return p
	}
	return `(/. + "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(p) + `")`
}
