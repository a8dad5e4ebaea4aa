package disko

import (
	"errors"
	"strings"
	"testing"
)

func TestPartLabel(t *testing.T) {
	for _, c := range []struct{ pt, pn, n, want string }{
		{"disk", "main", "ESP", "disk-main-ESP"},
		{"mdadm", "raid1", "root", "mdadm-raid1-root"},
		// 36 characters exactly: kept as is.
		{"disk", "abcdefghijklmnopqrstu", "vwxyz1234", "disk-abcdefghijklmnopqrstu-vwxyz1234"},
		// 42 characters: the first 36 hex characters of its sha256
		// (echo -n disk-nvme0n1-this-is-a-long-partition-name | sha256sum).
		{"disk", "nvme0n1", "this-is-a-long-partition-name", "5a67eefb21930a2b0bb2532abd32ffd208db"},
	} {
		if got := PartLabel(c.pt, c.pn, c.n); got != c.want {
			t.Errorf("PartLabel(%s, %s, %s) = %q, want %q", c.pt, c.pn, c.n, got, c.want)
		}
	}
}

// TestDefaults checks numbering by priority then attr name, default types,
// labels and device paths against disko's rules.
func TestDefaults(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{
		"root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},
		"swap":{"size":"8G","content":{"type":"swap"}},
		"ESP":{"size":"512M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
		"boot":{"size":"1M","type":"ef02"},
		"first":{"size":"10G","priority":50},
		"this-is-a-long-partition-name-xx":{"size":"1G"}
	}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name   string
		index  int
		prio   int
		typ    string
		label  string
		start  string
		end    string
		device string
	}
	want := []row{
		{"first", 1, 50, "8300", "disk-main-first", "0", "+10G", "/dev/disk/by-partlabel/disk-main-first"},
		{"boot", 2, 100, "EF02", "disk-main-boot", "0", "+1M", "/dev/disk/by-partlabel/disk-main-boot"},
		{"ESP", 3, 1000, "EF00", "disk-main-ESP", "0", "+512M", "/dev/disk/by-partlabel/disk-main-ESP"},
		{"swap", 4, 1000, "8200", "disk-main-swap", "0", "+8G", "/dev/disk/by-partlabel/disk-main-swap"},
		{"this-is-a-long-partition-name-xx", 5, 1000, "8300", PartLabel("disk", "main", "this-is-a-long-partition-name-xx"), "0", "+1G", ""},
		{"root", 6, 9001, "8300", "disk-main-root", "0", "-0", "/dev/disk/by-partlabel/disk-main-root"},
	}
	parts := s.Disks[0].Content.Partitions
	if len(parts) != len(want) {
		t.Fatalf("%d partitions, want %d", len(parts), len(want))
	}
	for i, w := range want {
		p := parts[i]
		got := row{p.Name, p.Index, p.Priority, p.TypeCode, p.Label, p.Start, p.End, p.Device}
		if w.device == "" {
			w.device = "/dev/disk/by-partlabel/" + w.label
		}
		if got != w {
			t.Errorf("partition %d:\n got %+v\nwant %+v", i+1, got, w)
		}
	}
	if l := parts[4].Label; len(l) != 36 || strings.HasPrefix(l, "disk-") {
		t.Errorf("long label not hashed: %q", l)
	}
	if c := parts[2].Content; c.Device != "/dev/disk/by-partlabel/disk-main-ESP" || c.MountOptions[0] != "defaults" {
		t.Errorf("ESP content: device %q options %v", c.Device, c.MountOptions)
	}
}

// TestEvaluatedForm: _index, label and device from config.disko.devices win.
func TestEvaluatedForm(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vda","name":"main","content":{"type":"gpt","partitions":{
		"a":{"_index":2,"size":"1G","label":"custom-a","priority":1000,"type":"8300","device":"/dev/disk/by-partlabel/custom-a","start":"0","end":"+1G"},
		"b":{"_index":1,"size":"1G","label":"disk-main-b","priority":1000,"type":"8300","device":"/dev/disk/by-partlabel/disk-main-b","start":"0","end":"+1G"}
	}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := s.Disks[0].Content.Partitions
	if p[0].Name != "b" || p[0].Index != 1 || p[1].Name != "a" || p[1].Index != 2 || p[1].Label != "custom-a" {
		t.Errorf("got %s=%d %s=%d (%s)", p[0].Name, p[0].Index, p[1].Name, p[1].Index, p[1].Label)
	}
}

func TestStackedDevices(t *testing.T) {
	s, err := Parse([]byte(`{
	"disk":{
	  "a":{"type":"disk","device":"/dev/vdb","content":{"type":"gpt","partitions":{"md":{"size":"100%","content":{"type":"mdraid","name":"nas"}}}}},
	  "b":{"type":"disk","device":"/dev/vdc","content":{"type":"gpt","partitions":{"md":{"size":"100%","content":{"type":"mdraid","name":"nas"}}}}},
	  "c":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{"luks":{"size":"100%","content":{"type":"luks","name":"crypted","settings":{"allowDiscards":true},"content":{"type":"lvm_pv","vg":"pool"}}}}}}},
	"mdadm":{"nas":{"type":"mdadm","level":1,"content":{"type":"filesystem","format":"xfs","mountpoint":"/srv"}}},
	"lvm_vg":{"pool":{"type":"lvm_vg","lvs":{"root":{"size":"100%FREE","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},"swap":{"size":"2G","content":{"type":"swap"}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if md := s.MDs[0]; md.Device != "/dev/md/nas" || md.Content.Device != "/dev/md/nas" || len(md.Members) != 2 || md.Metadata != "default" {
		t.Errorf("md: %+v", md)
	}
	vg := s.VGs[0]
	if vg.LVs[0].Name != "swap" || vg.LVs[1].Device != "/dev/pool/root" || vg.PVs[0] != "/dev/mapper/crypted" {
		t.Errorf("vg: lvs %s %s pvs %v", vg.LVs[0].Name, vg.LVs[1].Device, vg.PVs)
	}
	m, _ := ParseMode("destroy,format,mount")
	steps, err := BuildPlan(s, m, Options{Devices: map[string]string{"a": "/dev/loop1"}})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, st := range steps {
		for _, c := range st.Cmds {
			cmds = append(cmds, strings.Join(c, " "))
		}
	}
	all := strings.Join(cmds, "\n")
	for _, w := range []string{
		"sgdisk --clear --align-end --new=1:0:-0 --change-name=1:disk-a-md --typecode=1:8300 /dev/loop1",
		"cryptsetup -q luksFormat --type luks2 --key-file=- /dev/vda1",
		"cryptsetup open --key-file=- --allow-discards /dev/vda1 crypted",
		"pvcreate /dev/mapper/crypted",
		"mdadm --create /dev/md/nas --level=1 --raid-devices=2 --metadata=default --force --homehost=any --run /dev/loop1p1 /dev/vdc1",
		"vgcreate pool /dev/mapper/crypted",
		"lvcreate --yes -L 2G -n swap pool",
		"lvcreate --yes -l 100%FREE -n root pool",
		"mkfs.ext4 /dev/pool/root",
		"vgchange -a y pool",
		"mount -t ext4 -o defaults -o X-mount.mkdir /dev/pool/root /mnt",
		"mount -t xfs -o defaults -o X-mount.mkdir /dev/md/nas /mnt/srv",
		"swapoff /dev/pool/swap",
		"cryptsetup close crypted",
		"mdadm --stop /dev/md/nas",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("plan lacks %q:\n%s", w, all)
		}
	}
	if strings.Index(all, "mdadm --create") > strings.Index(all, "vgcreate") {
		t.Errorf("mdadm must come before lvm_vg:\n%s", all)
	}
	for _, st := range steps {
		if st.Action == "luksFormat" && st.KeyName != "crypted" {
			t.Errorf("luksFormat key %q, want crypted", st.KeyName)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	disk := func(parts string) string {
		return `{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{` + parts + `}}}}}`
	}
	for _, c := range []struct {
		in, want string
		sentinel error
	}{
		{disk(`"root":{"size":"10X"}`), `disk.main.content.partitions.root: size "10X": want N[KMGTP] or "100%": invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"100%"},"zz":{"size":"1G","priority":9999}`), `disk.main.content.partitions.root: size "100%" must be the last partition (it is number 1 of 2; hint: give it the highest priority): invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","type":"83"}`), `disk.main.content.partitions.root: type "83": want a 4-hex sgdisk code (EF00, 8300...) or a GUID: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","content":{"type":"zfs","pool":"z"}}`), `disk.main.content.partitions.root.content: type "zfs" is not supported yet`, ErrUnsupported},
		{disk(`"root":{"size":"1G","content":{"type":"filesystem","format":"ntfs"}}`), `disk.main.content.partitions.root.content: format "ntfs": want one of ext2, ext3, ext4, vfat, xfs, btrfs, f2fs: invalid disko spec`, ErrSpec},
		{disk(`"a":{"size":"1G","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},"b":{"size":"1G","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}`), `disk.main.content.partitions.b.content: mountpoint "/": already used by disk.main.content.partitions.a.content: invalid disko spec`, ErrSpec},
		{disk(`"a":{"size":"1G","content":{"type":"lvm_pv","vg":"nope"}}`), `lvm_vg.nope: referenced by an lvm_pv but not defined: invalid disko spec`, ErrSpec},
		{`{"zpool":{"zroot":{}}}`, `zpool.zroot: zfs is not supported yet (hint: use gpt with ext4, xfs or btrfs)`, ErrUnsupported},
		{`{"disk":{"main":{"type":"disk","device":"vda"}}}`, `disk.main: device "vda": must be an absolute path: invalid disko spec`, ErrSpec},
	} {
		_, err := Parse([]byte(c.in))
		if err == nil || err.Error() != c.want || !errors.Is(err, c.sentinel) {
			t.Errorf("Parse(%s):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, ok := range []string{"destroy,format,mount", "format", "mount", "unmount", "format,mount"} {
		if _, err := ParseMode(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ParseMode("destroy"); err == nil || err.Error() != `mode "destroy": destroy needs format (hint: use destroy,format,mount)` {
		t.Errorf("destroy alone: %v", err)
	}
}

func TestPartNode(t *testing.T) {
	for in, want := range map[string]string{"/dev/sda": "/dev/sda2", "/dev/nvme0n1": "/dev/nvme0n1p2", "/dev/loop3": "/dev/loop3p2", "/dev/disk/by-id/ata-X": "/dev/disk/by-id/ata-X-part2"} {
		if got := PartNode(in, 2); got != want {
			t.Errorf("PartNode(%s) = %s, want %s", in, got, want)
		}
	}
}
