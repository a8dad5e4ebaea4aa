package disko

import (
	"fmt"
	pathpkg "path"
	"slices"
	"strings"
)

// This file reads content nodes: what a disk, partition, LV, md array or
// LUKS device holds.

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
	case "zfs":
		p.zfsMember(o, n, pa)
	case "bcachefs":
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
	n.Mountpoint, n.MountOptions = p.mountable(o)
}

func (p *parser) btrfs(o *obj, n *Node) {
	n.Format = "btrfs"
	n.ExtraArgs = o.words("extraArgs")
	n.Mountpoint, n.MountOptions = p.mountable(o)
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
		sv.Mountpoint, sv.MountOptions = p.mountable(so)
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
	p.claim("disk key", n.Name, o.path) // --disk-key NAME: luks names and zfs encryption roots
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

// mountable reads a mountpoint and its options (by default "defaults"),
// and claims the mountpoint.
func (p *parser) mountable(o *obj) (string, []string) {
	mp, opts := o.absPath("mountpoint"), o.strs("mountOptions")
	if len(opts) == 0 {
		opts = []string{"defaults"}
	}
	p.addMount(mp, o.path)
	return mp, opts
}
