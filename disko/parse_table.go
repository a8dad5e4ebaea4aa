package disko

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// This file reads partition tables: gpt (numbering, labels, devices and
// the hybrid MBR as disko makes them) and disko's legacy parted tables.

// gpt reads a gpt and its partitions.
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
