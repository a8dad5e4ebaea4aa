package disko

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// chooser turns fuzz bytes into choices (0 when the bytes run out).
type chooser struct {
	b []byte
	i int
}

func (c *chooser) n(max int) int {
	if c.i >= len(c.b) || max <= 1 {
		c.i++
		return 0
	}
	v := int(c.b[c.i]) % max
	c.i++
	return v
}

func (c *chooser) pick(opts ...any) any { return opts[c.n(len(opts))] }

// genLayout builds a disko layout from fuzz bytes: disks with gpt, legacy
// tables or whole-disk content, partitions of every kind of content, md
// arrays (partitioned ones included) and volume groups for what the
// members name, nodev mounts. Values come from what disko accepts and a
// few it does not, so both paths of Parse are taken.
func genLayout(data []byte) []byte {
	c := &chooser{b: data}
	mds, vgs := map[string]bool{}, map[string]bool{}
	luks := 0
	mps := []any{"/", "/boot", "/home", "/var", "/srv/a", "/srv/a/b", "/nix", nil, nil}
	var content func(depth int, device bool) map[string]any
	fs := func() map[string]any {
		f := map[string]any{"type": "filesystem", "format": c.pick("ext4", "xfs", "vfat", "btrfs", "exfat", "ext2", "f2fs", "ntfs")}
		if mp := c.pick(mps...); mp != nil {
			f["mountpoint"] = mp
		}
		if c.n(4) == 0 {
			f["mountOptions"] = []any{c.pick("noatime", "umask=0077", "defaults")}
		}
		return f
	}
	var gpt func(depth int) map[string]any
	content = func(depth int, device bool) map[string]any {
		kinds := []string{"fs", "fs", "fs", "swap", "btrfs", "luks", "lvm_pv", "mdraid"}
		if device && depth < 2 {
			kinds = append(kinds, "gpt")
		}
		switch kinds[c.n(len(kinds))] {
		case "swap":
			return map[string]any{"type": "swap", "randomEncryption": c.n(3) == 0}
		case "btrfs":
			b := map[string]any{"type": "btrfs", "extraArgs": []any{"-f"}}
			if mp := c.pick(mps...); mp != nil {
				b["mountpoint"] = mp
			}
			subs := map[string]any{}
			for i := c.n(4); i > 0; i-- {
				sv := map[string]any{}
				if mp := c.pick(mps...); mp != nil {
					sv["mountpoint"] = mp
				}
				if c.n(4) == 0 {
					sv["swap"] = map[string]any{"sw": map[string]any{"size": c.pick("16M", "1G", "1.5G")}}
				}
				subs[c.pick("@", "@home", "/nix", "@home/x", "../up").(string)] = sv
			}
			b["subvolumes"] = subs
			if c.n(5) == 0 {
				b["swap"] = map[string]any{"top": map[string]any{"size": "8M"}}
			}
			return b
		case "luks":
			if depth > 2 {
				return fs()
			}
			luks++
			l := map[string]any{"type": "luks", "name": fmt.Sprintf("crypt%d", luks%3), "settings": map[string]any{"allowDiscards": c.n(2) == 0}}
			if in := content(depth+1, true); in != nil {
				l["content"] = in
			}
			return l
		case "lvm_pv":
			vg := c.pick("vg0", "vg1").(string)
			vgs[vg] = true
			return map[string]any{"type": "lvm_pv", "vg": vg}
		case "mdraid":
			md := c.pick("md0", "md1").(string)
			mds[md] = true
			return map[string]any{"type": "mdraid", "name": md}
		case "gpt":
			return gpt(depth + 1)
		}
		return fs()
	}
	gpt = func(depth int) map[string]any {
		parts := map[string]any{}
		for i := 1 + c.n(5); i > 0; i-- {
			p := map[string]any{}
			switch c.n(6) {
			case 0:
				p["size"] = "100%"
			case 1:
				p["end"] = c.pick("-1G", "-0", "+64M")
			case 2:
				p["start"], p["end"] = "2048s", "4095s"
			default:
				p["size"] = c.pick("1M", "16M", "100M", "1G", "2G", "1.5G")
			}
			if t := c.pick(nil, nil, "EF00", "EF02", "ef02", "FD00", "8e00"); t != nil {
				p["type"] = t
			}
			if c.n(6) == 0 {
				p["priority"] = c.n(3000)
			}
			if c.n(8) == 0 && depth == 0 {
				p["hybrid"] = map[string]any{"mbrPartitionType": "0x0c"}
			}
			if c.n(4) != 0 {
				p["content"] = content(depth+1, false)
			}
			parts[c.pick("ESP", "boot", "root", "swap", "data", "a", "b", "c", "with space").(string)] = p
		}
		return map[string]any{"type": "gpt", "partitions": parts}
	}
	disks := map[string]any{}
	devs := []string{"/dev/vda", "/dev/sdb", "/dev/nvme0n1", "/dev/disk/by-id/ata-x", "/dev/mmcblk0"}
	for i := 0; i < 1+c.n(3); i++ {
		d := map[string]any{"type": "disk", "device": devs[(i+c.n(5))%len(devs)]}
		if c.n(6) == 0 {
			d["destroy"] = false
		}
		switch c.n(10) {
		case 0:
			d["content"] = map[string]any{"type": "table", "format": c.pick("msdos", "gpt"), "partitions": []any{
				map[string]any{"name": "one", "start": "1MiB", "end": "64MiB", "bootable": true, "content": fs()},
				map[string]any{"name": "two", "start": "64MiB", "end": "100%", "content": content(1, false)},
			}}
		case 1:
			d["content"] = content(1, false)
		default:
			d["content"] = gpt(0)
		}
		disks[fmt.Sprintf("d%d", i)] = d
	}
	top := map[string]any{"disk": disks}
	if len(mds) > 0 {
		m := map[string]any{}
		for name := range mds {
			md := map[string]any{"type": "mdadm", "level": c.pick(0, 1, 1, 5, 6, 10, 3)}
			if c.n(3) == 0 {
				md["extraArgs"] = []any{"--assume-clean"}
			}
			if in := content(1, true); in != nil && in["type"] != "mdraid" {
				md["content"] = in
			}
			m[name] = md
		}
		top["mdadm"] = m
	}
	if len(vgs) > 0 {
		v := map[string]any{}
		for name := range vgs {
			lvs := map[string]any{}
			for i := 1 + c.n(4); i > 0; i-- {
				lv := map[string]any{"size": c.pick("10M", "1.5G", "20g", "100%", "50%VG", "100%FREE", "1,5G")}
				switch c.n(6) {
				case 0:
					lv["lvm_type"] = "thin-pool"
				case 1:
					lv["lvm_type"], lv["pool"] = "thinlv", "pool"
				case 2:
					lv["lvm_type"] = c.pick("raid1", "mirror", "raid5")
				}
				if c.n(3) != 0 {
					if in := content(2, false); in["type"] != "lvm_pv" {
						lv["content"] = in
					}
				}
				lvs[c.pick("root", "home", "pool", "swap", "data").(string)] = lv
			}
			v[name] = map[string]any{"type": "lvm_vg", "lvs": lvs}
		}
		top["lvm_vg"] = v
	}
	if c.n(4) == 0 {
		top["nodev"] = map[string]any{"/tmp": map[string]any{"fsType": "tmpfs", "mountOptions": []any{"size=1G"}}}
	}
	b, _ := json.Marshal(top)
	return b
}

// FuzzApply: for generated layouts, Parse fails only with ErrSpec or
// ErrUnsupported, and a layout it accepts goes through Apply on a dry
// machine (blank disks, with udev or without) in the install's sequence
// of modes without a panic; Apply fails only by refusing before any
// change (ErrRefused: a disk too small) — never half-way, never with a
// command the dry machine does not know.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\x01\x02\x03", "\x07\x07\x07\x07\x07\x07", "gpt\x09\x09md", "\x02\x05\x07\x01\x09\x03\x04\x06\x08", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		layout := genLayout(data)
		s, err := Parse(layout)
		if err != nil {
			if !errors.Is(err, ErrSpec) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%s\nerror wraps neither ErrSpec nor ErrUnsupported: %v", layout, err)
			}
			return
		}
		m, err := dryApply(t, s, 16<<30, len(data) > 0 && data[0]%2 == 0)
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("%s\nApply failed after the run began: %v\nlast commands:\n%s", layout, err, strings.Join(tail(m.cmds, 20), "\n"))
		}
		if len(m.unknown) > 0 {
			t.Fatalf("%s\ncommands the dry machine does not know: %q", layout, m.unknown)
		}
	})
}
