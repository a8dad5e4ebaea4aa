package disko

import (
	"errors"
	"fmt"
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
		"boot":{"size":"1M","type":"EF02"},
		"legacy":{"size":"1M","type":"ef02"},
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
		// disko compares the type as written: lower-case ef02 is not
		// moved to the front.
		{"legacy", 4, 1000, "ef02", "disk-main-legacy", "0", "+1M", "/dev/disk/by-partlabel/disk-main-legacy"},
		{"swap", 5, 1000, "8200", "disk-main-swap", "0", "+8G", "/dev/disk/by-partlabel/disk-main-swap"},
		{"this-is-a-long-partition-name-xx", 6, 1000, "8300", PartLabel("disk", "main", "this-is-a-long-partition-name-xx"), "0", "+1G", ""},
		{"root", 7, 9001, "8300", "disk-main-root", "0", "-0", "/dev/disk/by-partlabel/disk-main-root"},
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
	if l := parts[5].Label; len(l) != 36 || strings.HasPrefix(l, "disk-") {
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
		"cryptsetup -q luksFormat /dev/vda1 --key-file=-",
		"cryptsetup open /dev/vda1 crypted --allow-discards --key-file=- --persistent",
		"cryptsetup open /dev/vda1 crypted --allow-discards --key-file=-",
		"pvcreate /dev/mapper/crypted",
		"mdadm --create /dev/md/nas --level=1 --raid-devices=2 --metadata=default --force --homehost=any --run /dev/loop1p1 /dev/vdc1",
		"sgdisk --zap-all /dev/md/nas",
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
	// disko's order: the device attrsets by name (disk, lvm_vg, mdadm),
	// a device after those it is built on; this VG does not need the array.
	if strings.Index(all, "vgcreate") > strings.Index(all, "mdadm --create") {
		t.Errorf("lvm_vg must come before mdadm, as in disko:\n%s", all)
	}
	for _, st := range steps {
		if st.Kind() == "luksFormat" && st.KeyName != "crypted" {
			t.Errorf("luksFormat key %q, want crypted", st.KeyName)
		}
	}
}

// TestSpecErrors: what disko rejects, and what fleet does not do, named
// by node and option, the value quoted once, with what is accepted.
func TestSpecErrors(t *testing.T) {
	disk := func(parts string) string {
		return `{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{` + parts + `}}}}}`
	}
	pv := func(vg string) string {
		return `"disk":{"d":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{"p":{"size":"100%","content":{"type":"lvm_pv","vg":"` + vg + `"}}}}}}`
	}
	md := func(n int) string {
		var ds []string
		for i := 0; i < n; i++ {
			ds = append(ds, fmt.Sprintf(`"d%d":{"type":"disk","device":"/dev/vd%c","content":{"type":"gpt","partitions":{"p":{"size":"100%%","content":{"type":"mdraid","name":"r"}}}}}`, i, 'a'+i))
		}
		return `"disk":{` + strings.Join(ds, ",") + `}`
	}
	for _, c := range []struct {
		in, want string
		sentinel error
	}{
		{disk(`"root":{"size":"10X"}`), `disk.main.content.partitions.root.size: "10X": disko takes a whole number with an optional unit K, M, G, T or P (like 512M), or 100%: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1.5G"}`), `disk.main.content.partitions.root.size: "1.5G": disko takes a whole number with an optional unit K, M, G, T or P (like 512M), or 100%: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"20g"}`), `disk.main.content.partitions.root.size: "20g": disko takes a whole number with an optional unit K, M, G, T or P (like 512M), or 100%: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":512}`), `disk.main.content.partitions.root.size: 512: want a string: invalid disko spec`, ErrSpec},
		{disk(`"root":{"end":"+1.5M"}`), `disk.main.content.partitions.root.end: "+1.5M": sgdisk takes a whole number of sectors, or one with a unit K, M, G, T, P or s, after an optional + or -: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"100%"},"zz":{"size":"1G","priority":9999}`), "disk.main.content.partitions.root: size \"100%\" must be the last partition (it is number 1 of 2, and disk.main.content.partitions.zz starts after it): invalid disko spec\nhint: give it the highest priority", ErrSpec},
		{disk(`"a":{"end":"-0"},"b":{"size":"1G"}`), "disk.main.content.partitions.a: end \"-0\" must be the last partition (it is number 1 of 2, and disk.main.content.partitions.b starts after it): invalid disko spec\nhint: give it the highest priority", ErrSpec},
		{disk(`"a":{"start":"1M"},"b":{"size":"1G"}`), "disk.main.content.partitions.a: no size (it fills the free space) must be the last partition (it is number 1 of 2, and disk.main.content.partitions.b starts after it): invalid disko spec\nhint: give it the highest priority", ErrSpec},
		{disk(`"root":{"size":"1G","type":"83"}`), `disk.main.content.partitions.root.type: "83": want a 4-hex sgdisk code (EF00, 8300...) or a GUID: invalid disko spec`, ErrSpec},
		{disk(`"root":{"sise":"1G"}`), `disk.main.content.partitions.root.sise: disko has no such option here: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","content":{"type":"zfs","pool":"z"}}`), `disk.main.content.partitions.root.content: pool "z": no zpool of that name: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","content":{"type":"filesystem","format":"ntfs"}}`), `disk.main.content.partitions.root.content: format "ntfs" is not supported yet: fleet makes ext2, ext3, ext4, vfat, xfs, btrfs, f2fs and exfat`, ErrUnsupported},
		{disk(`"root":{"size":"1G","content":{"type":"btrfs","extraArgs":["--label 'my disk'"]}}`), "disk.main.content.partitions.root.content.extraArgs[0]: \"--label 'my disk'\": disko hands this to bash unquoted, and fleet takes plain words only: not supported yet\nhint: write each word as its own list item, without quotes or shell syntax", ErrUnsupported},
		{disk(`"a":{"size":"1G","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},"b":{"size":"1G","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}`), `disk.main.content.partitions.b.content: mountpoint "/": already used by disk.main.content.partitions.a.content: invalid disko spec`, ErrSpec},
		{disk(`"a":{"size":"1G","content":{"type":"lvm_pv","vg":"nope"}}`), `lvm_vg.nope: referenced by an lvm_pv but not defined: invalid disko spec`, ErrSpec},
		{disk(`"a":{"size":"1G","content":{"type":"filesystem","format":"ext4","postMountHook":"touch /x"}}`), "disk.main.content.partitions.a.content: postMountHook is not supported yet: fleet runs preCreateHook and postCreateHook only\nhint: do it in postCreateHook, or in the installed system", ErrUnsupported},
		{`{"zpool":{"zroot":{}}}`, "zpool.zroot: no zfs member refers to it: invalid disko spec", ErrSpec},
		{`{"bcachefs_filesystems":{"b":{"type":"bcachefs_filesystem"}}}`, "bcachefs_filesystems.b: bcachefs is not supported yet", ErrUnsupported},
		{`{"disk":{"main":{"type":"disk","device":"vda"}}}`, `disk.main.device: "vda": want an absolute path: invalid disko spec`, ErrSpec},
		{`{"disk":{"main":{"type":"disk","device":{"_type":"merge","contents":[]}}}}`, "disko.devices.disk.main.device: a value of Nix type \"merge\" (lib.mkMerge and the like) is not supported yet\nhint: evaluate the layout first, e.g. nix eval --json .#nixosConfigurations.HOST.config.disko.devices", ErrUnsupported},
		{disk(`"root":{"size":"1G","content":{"type":"btrfs","swap":{"s":{"size":"1G","path":"dir/file"}}}}`), `disk.main.content.partitions.root.content.swap.s.path: "dir/file": want a file name in its subvolume (no directories), like swapfile: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","content":{"type":"btrfs","swap":{"s":{"size":"1.5G"}}}}`), `disk.main.content.partitions.root.content.swap.s.size: "1.5G": disko takes a whole number with a unit K, M, G, T or P, like 8G: invalid disko spec`, ErrSpec},
		{disk(`"root":{"size":"1G","content":{"type":"btrfs","subvolumes":{"../x":{}}}}`), `disk.main.content.partitions.root.content.subvolumes.../x.name: "../x": want a path inside the filesystem, like @home or /home/user: invalid disko spec`, ErrSpec},
		{disk(`"a":{"size":"1G","content":{"type":"luks","name":"c"}},"b":{"size":"1G","content":{"type":"luks","name":"c"}}`), `disk.main.content.partitions.b.content: device-mapper name "c": already used by disk.main.content.partitions.a.content: invalid disko spec`, ErrSpec},
		// LVM
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"1.5x"}}}}}`, `lvm_vg.vg.lvs.a.size: "1.5x": lvcreate -L takes a number with an optional unit (b, s, k, m, g, t, p, e; MiB when none), like 20G, 20g or 1.5T, or a percentage like 100% or 50%VG: invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"150%"}}}}}`, `lvm_vg.vg.lvs.a.size: "150%": a percentage from 1 to 100: invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"10M","lvm_type":"thinlv"}}}}}`, `lvm_vg.vg.lvs.a.pool: missing: a thinlv names its thin pool (lvcreate --thinpool): invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"10M","lvm_type":"thinlv","pool":"p","priority":1},"p":{"size":"100M","lvm_type":"thin-pool"}}}}}`, `lvm_vg.vg.lvs.a.priority: 1: the thin volume would be created before its pool "p" (priority 501): invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"10M","lvm_type":"raid5"}}}}}`, `lvm_vg.vg.lvs.a.lvm_type: "raid5" needs at least 3 physical volumes, lvm_vg.vg has 1: invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"10M","lvm_type":"raid10"}}}}}`, `lvm_vg.vg.lvs.a.lvm_type: "raid10": disko takes mirror, raid0, raid1, raid4, raid5, raid6, thin-pool or thinlv: invalid disko spec`, ErrSpec},
		{`{` + pv("vg") + `,"lvm_vg":{"vg":{"type":"lvm_vg","lvs":{"a":{"size":"10M","content":{"type":"lvm_pv","vg":"vg"}}}}}}`, `disko.devices: lvm_vg.vg are built on each other in a cycle (an array, volume group or pool inside itself): invalid disko spec`, ErrSpec},
		// ZFS
		{zfs2(`"tank":{"type":"zpool","mode":"raidz4"}`), `zpool.tank.mode: "raidz4": disko takes "", mirror, raidz, raidz1, raidz2, raidz3 or a topology: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":"raidz2"}`), `zpool.tank.mode: "raidz2" over 2 members: it needs at least 3: invalid disko spec`, ErrSpec},
		{zfs2(`"mirror1":{"type":"zpool","name":"mirror1"}`), `zpool.mirror1.name: "mirror1": zpool reserves names beginning with "mirror": invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":{"topology":{"type":"topology","vdev":[{"mode":"mirror","members":["a"]}],"log":[{"members":["b"]}]}}}`), `zpool.tank.mode.topology.vdev[0].members: 1 member: a mirror vdev needs at least 2: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":{"topology":{"type":"topology","vdev":[{"mode":"mirror","members":["a","x"]}]}}}`), `zpool.tank.mode.topology: member "x": no zfs member of pool tank is /dev/disk/by-partlabel/disk-x-zfs (disko reads "x" as disk x's partition named zfs): invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":{"topology":{"type":"topology","vdev":[{"mode":"mirror","members":["a","a"]}]}}}`), `zpool.tank.mode.topology: member "a": named twice: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":{"topology":{"type":"topology","vdev":[{"members":["a"]}]}}}`), `disk.b.content.partitions.zfs.content: a member of pool tank that its topology does not name (/dev/disk/by-partlabel/disk-b-zfs): invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","mode":{"topology":{"type":"topology","vdev":[{"members":["a"]}],"log":[{"mode":"raidz","members":["b","c"]}]}}}`), `zpool.tank.mode.topology.log[0].mode: "raidz": zpool makes log vdevs of single devices or mirrors only: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"s":{"type":"zfs_fs","options":{"encryption":"on"}}}}`), `zpool.tank.datasets.s.options.encryption: "on" without keyformat: a new encryption root needs keyformat (passphrase, hex or raw): invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"s":{"type":"zfs_fs","options":{"keyformat":"pem"}}}}`), `zpool.tank.datasets.s.options.keyformat: "pem": zfs takes passphrase, hex or raw: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"s":{"type":"zfs_fs","options":{"keyformat":"raw","keylocation":"/etc/key"}}}}`), `zpool.tank.datasets.s.options.keylocation: "/etc/key": an encryption root's key is at prompt, file:///PATH or an http(s) URL: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"s":{"type":"zfs_fs","options":{"keylocation":"file:///k"}}}}`), `zpool.tank.datasets.s.options.keylocation: "file:///k": only an encryption root (a dataset with keyformat) has a keylocation: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"a/../b":{"type":"zfs_fs"}}}`), `zpool.tank.datasets.a/../b.name: "a/../b": a dataset name is parts of letters, digits and _.:- joined by /: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"v":{"type":"zfs_volume","size":"1 G"}}}`), `zpool.tank.datasets.v.size: "1 G": want a volume size like 10G or 512M: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"v":{"type":"zfs_volume","size":"1G","content":{"type":"gpt"}}}}`), `zpool.tank.datasets.v.content.type: "gpt": disko puts no partition table on a volume: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","options":{"Ashift":"12"}}`), `zpool.tank.options.Ashift: "Ashift": a property name is lower-case letters, digits and _.:@-: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"x":{"type":"zfs_fs","name":"y"},"y":{"type":"zfs_fs"}}}`), `zpool.tank.datasets.y: dataset "tank/y": already made by zpool.tank.datasets.x: invalid disko spec`, ErrSpec},
		{zfs2(`"tank":{"type":"zpool","datasets":{"a":{"type":"zfs_fs","mountpoint":"/x"},"b":{"type":"zfs_fs","mountpoint":"/x"}}}`), `zpool.tank.datasets.b: mountpoint "/x": already used by zpool.tank.datasets.a: invalid disko spec`, ErrSpec},
		{`{"disk":{"a":{"type":"disk","device":"/dev/vdb","content":{"type":"gpt","partitions":{"c":{"size":"100%","content":{"type":"luks","name":"tank","content":{"type":"zfs","pool":"tank"}}}}}}},"zpool":{"tank":{"type":"zpool","rootFsOptions":{"keyformat":"passphrase"}}}}`, `zpool.tank.rootFsOptions: disk key name "tank": already used by disk.a.content.partitions.c.content: invalid disko spec`, ErrSpec},
		// mdadm
		{`{` + md(2) + `,"mdadm":{"r":{"type":"mdadm","level":3}}}`, `mdadm.r.level: 3: mdadm makes levels 0, 1, 4, 5, 6 and 10: invalid disko spec`, ErrSpec},
		{`{` + md(2) + `,"mdadm":{"r":{"type":"mdadm","level":6}}}`, `mdadm.r: level 6 needs at least 4 members, 2 mdraid nodes name it: invalid disko spec`, ErrSpec},
		{`{` + md(2) + `,"mdadm":{"r":{"type":"mdadm","metadata":"0.90"}}}`, `mdadm.r.metadata: "0.90": disko takes 1, 1.0, 1.1, 1.2, default, ddf or imsm: invalid disko spec`, ErrSpec},
		{`{` + md(2) + `,"mdadm":{"r":{"type":"mdadm","metadata":"imsm"}}}`, `mdadm.r.metadata: "imsm" (a container format) is not supported yet`, ErrUnsupported},
		// legacy tables
		{`{"disk":{"m":{"type":"disk","device":"/dev/sda","content":{"type":"table","format":"msdos","partitions":[{"part-type":"logical","end":"1G"}]}}}}`, `disk.m.content.partitions[0].part-type: "logical" (the kernel numbers logical partitions from 5, disko's devices do not) is not supported yet`, ErrUnsupported},
		{`{"disk":{"m":{"type":"disk","device":"/dev/sda","content":{"type":"table","format":"msdos","partitions":[{"end":"1 G"}]}}}}`, `disk.m.content.partitions[0].end: "1 G": parted takes a number with an optional unit (s, B, kB, MB, MiB, GB, GiB, TB, TiB) or a percentage of the disk: invalid disko spec`, ErrSpec},
		{`{"disk":{"m":{"type":"disk","device":"/dev/hda","content":{"type":"table","format":"msdos","partitions":[{"end":"1G"}]}}}}`, `disk.m.content: a table on /dev/hda (disko numbers the partitions of /dev/sdX, /dev/vdX, /dev/xvdX, /dev/disk/..., /dev/nvme..., /dev/mmcblk..., /dev/md/..., /dev/mapper/... and /dev/loopN only) is not supported yet`, ErrUnsupported},
		{`{"disk":{"m":{"type":"disk","device":"/dev/sda","content":{"type":"table","format":"gpt","partitions":[{"end":"1G"}]}}}}`, `disk.m.content.partitions[0].name: missing: a partition of a gpt table needs a name: invalid disko spec`, ErrSpec},
	} {
		_, err := Parse([]byte(c.in))
		if err == nil || err.Error() != c.want || !errors.Is(err, c.sentinel) {
			t.Errorf("Parse(%s):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

// zfs2 is a layout with disks a and b, each a gpt partition in pool
// tank, and the zpools given.
func zfs2(pools string) string {
	part := func(dev string) string {
		return `{"type":"disk","device":"` + dev + `","content":{"type":"gpt","partitions":{"zfs":{"size":"100%","content":{"type":"zfs","pool":"tank"}}}}}`
	}
	return `{"disk":{"a":` + part("/dev/vdb") + `,"b":` + part("/dev/vdc") + `},"zpool":{` + pools + `}}`
}

func TestParseMode(t *testing.T) {
	for _, ok := range []string{"destroy,format,mount", "format", "mount", "unmount", "format,mount"} {
		if _, err := ParseMode(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ParseMode("destroy"); err == nil || err.Error() != "mode \"destroy\": destroy needs format\nhint: use destroy,format,mount" {
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
