package disko

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/rig"
)

// activeMD matches a running array in /proc/mdstat (the Personalities line
// stays once the raid1 module is loaded).
var activeMD = regexp.MustCompile(`(?m)^md[0-9]+ : active`)

// bootRig boots the rig's installer (with blank disks of the sizes in
// o.Disks) and connects to it as root, its host key pinned.
func bootRig(ctx context.Context, t *testing.T, o rig.Options) (*rig.VM, *remote.Client) {
	t.Helper()
	vm := rig.Boot(t, o)
	c, err := remote.Dial(ctx, remote.Target{User: "root", Host: "127.0.0.1", Port: vm.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: vm.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{vm.Identity}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return vm, c
}

// TestStackedLayoutsOnRig runs, inside the rig VM over SSH, what this
// host's kernel cannot: dm-crypt, LVM, md raid, vfat and exfat mounts. One
// boot (they cost ~20 s each under TCG), six blank disks, the layouts one
// after another: EFI+LUKS+LVM+ext4 on vda; a NAS (EFI+root on vdb, vdc
// and vdd in an mdadm raid1 with xfs); disko's boot-raid1 (/boot on an md
// mirror, / on a partitioned md) on vdb and vdc; RAID0 (level = 0,
// partitioned) and RAID5 with extraArgs on vdb, vdc and vde; an msdos
// table with LVM thin volumes on vdf and a hybrid MBR with exfat on vde;
// last, vdd vanishing during a format.
func TestStackedLayoutsOnRig(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	_, c := bootRig(ctx, t, rig.Options{Disks: []int64{1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30}})
	apply := func(s *Spec, mode, root string, keys map[string][]byte, keep ...string) error {
		m, err := ParseMode(mode)
		if err != nil {
			return err
		}
		return Apply(ctx, c, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: root, Keep: keep}, Keys: keys})
	}

	t.Run("EFI+LUKS+LVM+ext4", func(t *testing.T) {
		s, err := Parse([]byte(`{"disk": {"main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
  "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
  "luks": {"size": "100%", "content": {"type": "luks", "name": "crypted", "settings": {"allowDiscards": true},
    "content": {"type": "lvm_pv", "vg": "pool"}}}}}}},
 "lvm_vg": {"pool": {"type": "lvm_vg", "lvs": {"root": {"size": "100%FREE", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		key := map[string][]byte{"crypted": []byte("correct horse battery staple")}
		root := "/mnt/luks"
		if err := apply(s, "destroy,format,mount", root, key); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		if !has(ms, " ext4 /dev/mapper/pool-root") || !has(ms, "/boot vfat /dev/vda1") {
			t.Fatalf("mounts: %q", ms)
		}
		st := runOn(t, c, "cryptsetup", "status", "crypted")
		if !strings.Contains(st, "LUKS2") || !strings.Contains(st, "discards") {
			t.Fatalf("cryptsetup status:\n%s", st)
		}
		// Opened with --persistent at format, as disko does: the flag is
		// in the LUKS2 header, for the booted system's initrd too.
		if dump := runOn(t, c, "cryptsetup", "luksDump", "/dev/vda2"); !regexp.MustCompile(`(?m)^Flags:\s+allow-discards`).MatchString(dump) {
			t.Fatalf("luksDump: no persistent allow-discards flag:\n%s", dump)
		}
		runOn(t, c, "sh", "-c", "echo kept > "+root+"/file")
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if _, err := c.Run(ctx, remote.Cmd{Args: []string{"cryptsetup", "status", "crypted"}}); err == nil {
			t.Fatal("crypted still open after unmount")
		}
		if ms := mountsUnder(t, c, root); len(ms) != 0 {
			t.Fatalf("still mounted: %q", ms)
		}
		// A wrong key is refused by cryptsetup, and nothing is mounted.
		err = apply(s, "mount", root, map[string][]byte{"crypted": []byte("wrong")})
		var ee *remote.ExitError
		if !errors.As(err, &ee) || ee.StderrLine("No key available with this passphrase") == "" {
			t.Fatalf("wrong key: %v", err)
		}
		if err := apply(s, "mount", root, key); err != nil {
			t.Fatalf("mount: %v", err)
		}
		if got := strings.TrimSpace(runOn(t, c, "cat", root+"/file")); got != "kept" {
			t.Fatalf("file after remount: %q", got)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		// Kept (issue 18): the LUKS device opened without --persistent
		// (nothing written to its header), the volume group activated,
		// the filesystems checked and mounted; the file still there.
		header := runOn(t, c, "sh", "-c", "head -c 16M /dev/vda2 | sha256sum")
		if err := apply(s, "destroy,format,mount", root, key, "main"); err != nil {
			t.Fatalf("destroy,format,mount keeping main: %v", err)
		}
		if got := strings.TrimSpace(runOn(t, c, "cat", root+"/file")); got != "kept" {
			t.Fatalf("file after a reinstall keeping the disk: %q", got)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if got := runOn(t, c, "sh", "-c", "head -c 16M /dev/vda2 | sha256sum"); got != header {
			t.Fatal("the kept LUKS header's bytes changed")
		}
	})

	t.Run("NAS: EFI+root, mdadm raid1 xfs", func(t *testing.T) {
		s, err := Parse([]byte(nasOnRig))
		if err != nil {
			t.Fatal(err)
		}
		root := "/mnt/nas"
		if err := apply(s, "destroy,format,mount", root, nil); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		if !has(ms, " ext4 /dev/vdb2") || !has(ms, "/boot vfat /dev/vdb1") || !has(ms, "/srv/data xfs /dev/md") {
			t.Fatalf("mounts: %q", ms)
		}
		md := runOn(t, c, "cat", "/proc/mdstat")
		if !activeMD.MatchString(md) || !strings.Contains(md, "raid1") || !strings.Contains(md, "vdc1") || !strings.Contains(md, "vdd1") {
			t.Fatalf("mdstat:\n%s", md)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if md := runOn(t, c, "cat", "/proc/mdstat"); activeMD.MatchString(md) {
			t.Fatalf("md still running after unmount:\n%s", md)
		}
		// mount (as a resumed install does after an interrupt) assembles
		// the stopped array again and mounts everything where it was.
		if err := apply(s, "mount", root, nil); err != nil {
			t.Fatalf("mount after unmount: %v", err)
		}
		if ms := mountsUnder(t, c, root); !has(ms, " ext4 /dev/vdb2") || !has(ms, "/srv/data xfs /dev/md") {
			t.Fatalf("mounts after remount: %q", ms)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	t.Run("NAS reinstalled keeping its array", func(t *testing.T) { keepNASOnRig(t, c, apply) })

	t.Run("boot-raid1: /boot on an md mirror, / on a partitioned md", func(t *testing.T) {
		s, err := Parse([]byte(bootRaid1))
		if err != nil {
			t.Fatal(err)
		}
		root := "/mnt/br1"
		if err := apply(s, "destroy,format,mount", root, nil); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		checkBootRaid1 := func(when string) {
			t.Helper()
			ms := mountsUnder(t, c, root)
			if !has(ms, " ext4 /dev/md") || !has(ms, "/boot vfat /dev/md") {
				t.Fatalf("%s: mounts: %q", when, ms)
			}
			for _, m := range ms {
				if strings.HasPrefix(m, " ext4 ") && !regexp.MustCompile(`^ ext4 /dev/md[0-9]+p1 /$`).MatchString(m) {
					t.Fatalf("%s: / is not on the array's partition: %q", when, m)
				}
			}
			md := runOn(t, c, "cat", "/proc/mdstat")
			if n := len(regexp.MustCompile(`(?m)^md[0-9]+ : active raid1 `).FindAllString(md, -1)); n != 2 {
				t.Fatalf("%s: %d raid1 arrays, want 2:\n%s", when, n, md)
			}
			// metadata 1.0 sits at the end: the firmware reads the ESP
			// members as plain FAT.
			if typ := strings.TrimSpace(runOn(t, c, "blkid", "-p", "-s", "TYPE", "-o", "value", "/dev/vdb2")); typ != "vfat" && typ != "linux_raid_member" {
				t.Fatalf("%s: vdb2 holds %q", when, typ)
			}
			if out := runOn(t, c, "sh", "-c", "mdadm --examine /dev/vdb2 | grep -c 'Version : 1.0'"); strings.TrimSpace(out) != "1" {
				t.Fatalf("%s: the /boot members are not of metadata 1.0: %s", when, out)
			}
		}
		checkBootRaid1("after destroy,format,mount")
		runOn(t, c, "sh", "-c", "echo kept > "+root+"/boot/file")
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if links := runOn(t, c, "sh", "-c", "ls /dev/md 2>/dev/null; true"); strings.Contains(links, "boot") || strings.Contains(links, "sys") {
			t.Fatalf("arrays still running after unmount: /dev/md has %q\n%s", links, runOn(t, c, "cat", "/proc/mdstat"))
		}
		if err := apply(s, "mount", root, nil); err != nil {
			t.Fatalf("mount after unmount: %v", err)
		}
		checkBootRaid1("after unmount and mount")
		if got := strings.TrimSpace(runOn(t, c, "cat", root+"/boot/file")); got != "kept" {
			t.Fatalf("file on /boot after remount: %q", got)
		}
		if err := apply(s, "format", root, nil); err != nil {
			t.Fatalf("format again, mounted: %v", err)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	t.Run("RAID0 (level 0, partitioned) and RAID5 with extraArgs", func(t *testing.T) {
		s, err := Parse([]byte(raidLevels))
		if err != nil {
			t.Fatal(err)
		}
		// The arrays of the layout before, running again (as an installer
		// booted over old disks assembles them): destroy takes them down.
		runOn(t, c, "sh", "-c", "mdadm --assemble /dev/md/boot /dev/vdb2 /dev/vdc2 && mdadm --assemble /dev/md/sys /dev/vdb3 /dev/vdc3")
		ours := regexp.MustCompile(`(?m)^md[0-9]+ : active .*vd[bce][0-9]`)
		if md := runOn(t, c, "cat", "/proc/mdstat"); len(ours.FindAllString(md, -1)) != 2 {
			t.Fatalf("the old arrays did not assemble:\n%s", md)
		}
		root := "/mnt/levels"
		if err := apply(s, "destroy,format,mount", root, nil); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		if !has(ms, " ext4 /dev/md") || !has(ms, "/scratch ext4 /dev/md") || !has(ms, "/cache xfs /dev/md") {
			t.Fatalf("mounts: %q", ms)
		}
		md := runOn(t, c, "cat", "/proc/mdstat")
		if !regexp.MustCompile(`(?m)^md[0-9]+ : active raid0 vd[bce]1\[[0-9]\] vd[bce]1\[[0-9]\] vd[bce]1\[[0-9]\]`).MatchString(md) ||
			!regexp.MustCompile(`(?m)^md[0-9]+ : active raid5 vd[bce]2\[[0-9]\] vd[bce]2\[[0-9]\] vd[bce]2\[[0-9]\]`).MatchString(md) {
			t.Fatalf("want a raid0 over the first partitions and a raid5 over the second:\n%s", md)
		}
		if n := len(ours.FindAllString(md, -1)); n != 2 {
			t.Fatalf("%d arrays run on vdb, vdc and vde, want the layout's 2 (the old ones taken down):\n%s", n, md)
		}
		// --assume-clean: the raid5 never resyncs.
		if strings.Contains(md, "resync") || strings.Contains(md, "recovery") {
			t.Fatalf("the raid5 resyncs, --assume-clean was not passed:\n%s", md)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	t.Run("msdos table with LVM thin volumes; hybrid MBR with exfat", func(t *testing.T) {
		s, err := Parse([]byte(msdosThinHybrid))
		if err != nil {
			t.Fatal(err)
		}
		root := "/mnt/thin"
		if err := apply(s, "destroy,format,mount", root, nil); err != nil {
			t.Fatalf("destroy,format,mount: %v", err)
		}
		ms := mountsUnder(t, c, root)
		for _, want := range []string{" ext4 /dev/mapper/tank-root", "/var xfs /dev/mapper/tank-var", "/boot/firmware vfat /dev/vdf1", "/media exfat /dev/vde2", "/esp vfat /dev/vde1"} {
			if !has(ms, want) {
				t.Fatalf("mounts lack %q: %q", want, ms)
			}
		}
		if dump := runOn(t, c, "sfdisk", "-d", "/dev/vdf"); !strings.Contains(dump, "label: dos") ||
			!regexp.MustCompile(`/dev/vdf1 : start=\s+8192, size=\s+131072, type=c, bootable`).MatchString(dump) {
			t.Fatalf("msdos table:\n%s", dump)
		}
		lvs := runOn(t, c, "lvs", "--noheadings", "-o", "lv_name,segtype,pool_lv", "tank")
		for _, want := range []string{`pool +thin-pool`, `root +thin +pool`, `var +thin +pool`, `plain +linear`} {
			if !regexp.MustCompile(`(?m)^\s*` + want + `\s*$`).MatchString(lvs) {
				t.Fatalf("lvs lacks %q:\n%s", want, lvs)
			}
		}
		mbr := runOn(t, c, "sfdisk", "--label-nested", "dos", "-d", "/dev/vde")
		if !regexp.MustCompile(`/dev/vde1 : start=\s+2048, size=\s+65536, type=c\n`).MatchString(mbr) || !strings.Contains(mbr, "type=ee") {
			t.Fatalf("hybrid MBR:\n%s", mbr)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		if err := apply(s, "mount", root, nil); err != nil {
			t.Fatalf("mount again: %v", err)
		}
		if err := apply(s, "unmount", root, nil); err != nil {
			t.Fatalf("unmount: %v", err)
		}
	})

	// Last, as it takes a disk away for good: the disk vanishes (its PCI
	// device removed, as a failing cable or controller would) while its
	// root filesystem is being made. The error names the step and the
	// node on that disk; a re-run refuses before touching anything,
	// naming the missing disk.
	t.Run("a disk that disappears during format", func(t *testing.T) {
		s, err := Parse([]byte(`{"disk": {"flaky": {"type": "disk", "device": "/dev/vdd", "content": {"type": "gpt", "partitions": {
  "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat"}},
  "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`))
		if err != nil {
			t.Fatal(err)
		}
		pulled := make(chan error, 1)
		hook := &lineHook{match: "action=mkfs node=disk.flaky.content.partitions.root.content", fn: func() {
			_, err := c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "echo 1 > \"$(readlink -f /sys/block/vdd/device)/../remove\""}})
			pulled <- err
		}}
		m, _ := ParseMode("destroy,format,mount")
		err = Apply(ctx, c, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: "/mnt/flaky"}, Log: log.New(hook)})
		select {
		case perr := <-pulled:
			if perr != nil {
				t.Fatalf("remove the disk: %v", perr)
			}
		default:
			t.Fatalf("the root's mkfs never started: %v", err)
		}
		if !errors.Is(err, ErrMissingDevice) || !strings.HasPrefix(err.Error(), `format mkfs disk.flaky.content.partitions.root.content: disk "flaky" (/dev/vdd) disappeared: device not found: `) {
			t.Fatalf("want the failed step and the vanished disk named: %v", err)
		}
		t.Logf("with the disk gone mid-format: %v", err)
		if out := runOn(t, c, "sh", "-c", "grep -c ' /mnt/flaky' /proc/mounts || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("something is mounted from the vanished disk: %s", out)
		}
		err = apply(s, "destroy,format,mount", "/mnt/flaky", nil)
		if !errors.Is(err, ErrMissingDevice) || !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), `disk "flaky": /dev/vdd: device not found: no changes made`) {
			t.Fatalf("re-run: want a refusal naming the missing disk: %v", err)
		}
	})
}

// nasOnRig is the example's nas on vdb (system), vdc and vdd (an md
// raid1 with xfs).
const nasOnRig = `{"disk": {
  "sys": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "d1": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}},
  "d2": {"type": "disk", "device": "/dev/vdd", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}}},
 "mdadm": {"data": {"type": "mdadm", "level": 1, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}`

// keepNASOnRig (issue 18): the NAS reinstalled onto a new system disk
// with its data disks kept, after udev assembled their array as the
// NixOS ISO does at boot: the array is accepted as it runs (same node,
// same UUID), the data's sha256 unchanged. Then the refusals, each with
// nothing changed: the layout's array under another name; a kept member
// blanked.
func keepNASOnRig(t *testing.T, c remote.Runner, apply func(s *Spec, mode, root string, keys map[string][]byte, keep ...string) error) {
	s, err := Parse([]byte(nasOnRig))
	if err != nil {
		t.Fatal(err)
	}
	root := "/mnt/keep"
	if err := apply(s, "destroy,format,mount", root, nil); err != nil {
		t.Fatalf("install: %v", err)
	}
	runOn(t, c, "dd", "if=/dev/urandom", "of="+root+"/srv/data/file", "bs=1M", "count=8", "status=none")
	sum := runOn(t, c, "sh", "-c", "cd "+root+"/srv/data && sha256sum file")
	uuid := mdExportOn(t, c, "--detail", "/dev/md/data")["MD_UUID"]
	if uuid == "" {
		t.Fatal("no array UUID")
	}
	if err := apply(s, "unmount", root, nil); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	// A new, blank system disk; the installer boots and udev assembles
	// the surviving array.
	runOn(t, c, "sh", "-c", "wipefs -a -q /dev/vdb1 /dev/vdb2 && sgdisk --zap-all /dev/vdb >/dev/null")
	runOn(t, c, "sh", "-c", "udevadm trigger --action=add --subsystem-match=block --sysname-match='vd[cd]*' && udevadm settle")
	md := runOn(t, c, "cat", "/proc/mdstat")
	node := regexp.MustCompile(`(?m)^(md[0-9]+) : active (\(auto-read-only\) )?raid1`).FindStringSubmatch(md)
	if node == nil {
		t.Fatalf("udev did not assemble the array:\n%s", md)
	}
	if err := apply(s, "destroy,format,mount", root, nil, "d1", "d2"); err != nil {
		t.Fatalf("reinstall keeping d1, d2: %v", err)
	}
	if got := runOn(t, c, "sh", "-c", "cd "+root+"/srv/data && sha256sum file"); got != sum {
		t.Fatalf("the data's sha256 is %s, was %s", got, sum)
	}
	if got := mdExportOn(t, c, "--detail", "/dev/md/data")["MD_UUID"]; got != uuid {
		t.Fatalf("the array's UUID is %s, was %s", got, uuid)
	}
	if ms := mountsUnder(t, c, root); !has(ms, "/srv/data xfs /dev/"+node[1]) || !has(ms, " ext4 /dev/vdb2") || !has(ms, "/boot vfat /dev/vdb1") {
		t.Fatalf("mounts (the array udev assembled, %s, mounted as it runs): %q", node[1], ms)
	}
	if err := apply(s, "unmount", root, nil); err != nil {
		t.Fatalf("unmount: %v", err)
	}

	// state is what the kept disks hold: their first MiB (tables and md
	// superblocks) and whether any array runs.
	state := func() string {
		return runOn(t, c, "sh", "-c", "head -c 1M /dev/vdc | sha256sum; head -c 1M /dev/vdd | sha256sum; grep -c ' : active' /proc/mdstat || true")
	}
	hint := "\nhint: fleet never writes to a kept device: check that --keep names the disks holding the data (and --device where they are), or leave a disk out of --keep to erase it"
	refused := func(t *testing.T, s *Spec, want string) {
		t.Helper()
		before := state()
		err := apply(s, "destroy,format,mount", root, nil, "d1", "d2")
		if err == nil || err.Error() != want || !errors.Is(err, ErrKeep) || !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		if after := state(); after != before {
			t.Fatalf("the kept disks changed or an array was left running:\n%s\nwas:\n%s", after, before)
		}
	}
	t.Run("the array under another name", func(t *testing.T) {
		other, err := Parse([]byte(strings.ReplaceAll(nasOnRig, `"data"`, `"backup"`)))
		if err != nil {
			t.Fatal(err)
		}
		refused(t, other, `keep mdadm "backup" (/dev/md/backup): mdadm.backup: /dev/vdc1 is a member of md array `+uuid+` with array name "any:data", want "backup": existing layout does not match: no changes made`+hint)
	})
	t.Run("a kept member blanked", func(t *testing.T) {
		runOn(t, c, "sh", "-c", "wipefs -a -q /dev/vdd1 && sgdisk --zap-all /dev/vdd >/dev/null")
		refused(t, s, `keep disk "d2" (/dev/vdd): disk.d2.content: /dev/vdd is blank: blkid finds no partition table, the layout wants gpt: existing layout does not match: no changes made`+hint)
	})
}

// mdExportOn is mdadm's --export output for an array or member.
func mdExportOn(t *testing.T, r remote.Runner, args ...string) map[string]string {
	t.Helper()
	kv := map[string]string{}
	for _, l := range strings.Split(runOn(t, r, append([]string{"mdadm", args[0], "--export"}, args[1:]...)...), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

func has(list []string, want string) bool {
	for _, l := range list {
		if strings.HasPrefix(l, want) {
			return true
		}
	}
	return false
}

// bootRaid1 is disko's boot-raid1 construct, our own: two disks each with
// a BIOS boot partition, an ESP in an md mirror of metadata 1.0 (vfat
// /boot) and the rest in a second mirror carrying its own gpt (ext4 /).
const bootRaid1 = `{"disk":{
  "one":{"type":"disk","device":"/dev/vdb","content":{"type":"gpt","partitions":{
    "bios":{"size":"1M","type":"EF02"},
    "esp":{"size":"64M","type":"EF00","content":{"type":"mdraid","name":"boot"}},
    "rest":{"size":"100%","content":{"type":"mdraid","name":"sys"}}}}},
  "two":{"type":"disk","device":"/dev/vdc","content":{"type":"gpt","partitions":{
    "bios":{"size":"1M","type":"EF02"},
    "esp":{"size":"64M","type":"EF00","content":{"type":"mdraid","name":"boot"}},
    "rest":{"size":"100%","content":{"type":"mdraid","name":"sys"}}}}}},
 "mdadm":{
  "boot":{"type":"mdadm","level":1,"metadata":"1.0","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot","mountOptions":["umask=0077"]}},
  "sys":{"type":"mdadm","level":1,"content":{"type":"gpt","partitions":{
    "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`

// raidLevels: a RAID0 asked for with level = 0 (once taken for "unset",
// which made a mirror) carrying a gpt, and a RAID5 with extraArgs.
const raidLevels = `{"disk":{
  "b":{"type":"disk","device":"/dev/vdb","content":{"type":"gpt","partitions":{"s":{"size":"200M","content":{"type":"mdraid","name":"stripe"}},"p":{"size":"100%","content":{"type":"mdraid","name":"parity"}}}}},
  "c":{"type":"disk","device":"/dev/vdc","content":{"type":"gpt","partitions":{"s":{"size":"200M","content":{"type":"mdraid","name":"stripe"}},"p":{"size":"100%","content":{"type":"mdraid","name":"parity"}}}}},
  "e":{"type":"disk","device":"/dev/vde","content":{"type":"gpt","partitions":{"s":{"size":"200M","content":{"type":"mdraid","name":"stripe"}},"p":{"size":"100%","content":{"type":"mdraid","name":"parity"}}}}}},
 "mdadm":{
  "stripe":{"type":"mdadm","level":0,"content":{"type":"gpt","partitions":{
    "scratch":{"size":"100M","content":{"type":"filesystem","format":"ext4","mountpoint":"/scratch"}},
    "cache":{"size":"100%","content":{"type":"filesystem","format":"xfs","mountpoint":"/cache"}}}}},
  "parity":{"type":"mdadm","level":5,"extraArgs":["--assume-clean","--chunk=64"],"content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}`

// msdosThinHybrid: an msdos table as a Raspberry Pi's firmware wants it
// (bootable FAT32 of type 0x0c first) with LVM after it, thin volumes in
// a thin pool beside a plain LV; and a gpt with a hybrid MBR whose FAT
// partition gets MBR type 0x0c, beside an exfat partition.
const msdosThinHybrid = `{"disk":{
  "sd":{"type":"disk","device":"/dev/vdf","content":{"type":"table","format":"msdos","partitions":[
    {"start":"4MiB","end":"68MiB","fs-type":"fat32","bootable":true,"content":{"type":"filesystem","format":"vfat","mountpoint":"/boot/firmware"}},
    {"start":"68MiB","end":"100%","content":{"type":"lvm_pv","vg":"tank"}}]}},
  "board":{"type":"disk","device":"/dev/vde","content":{"type":"gpt","efiGptPartitionFirst":false,"partitions":{
    "fw":{"priority":1,"size":"32M","type":"EF00","hybrid":{"mbrPartitionType":"0x0c"},"content":{"type":"filesystem","format":"vfat","mountpoint":"/esp"}},
    "media":{"size":"100%","type":"0700","content":{"type":"filesystem","format":"exfat","mountpoint":"/media"}}}}}},
 "lvm_vg":{"tank":{"type":"lvm_vg","lvs":{
   "pool":{"size":"600M","lvm_type":"thin-pool"},
   "root":{"size":"1G","lvm_type":"thinlv","pool":"pool","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}},
   "var":{"size":"400M","lvm_type":"thinlv","pool":"pool","content":{"type":"filesystem","format":"xfs","mountpoint":"/var"}},
   "plain":{"size":"32M","content":{"type":"swap"}}}}}}`

// lineHook is a log writer that runs fn once, on the first line
// containing match.
type lineHook struct {
	match string
	fn    func()
	done  bool
}

func (h *lineHook) Write(p []byte) (int, error) {
	if !h.done && strings.Contains(string(p), h.match) {
		h.done = true
		h.fn()
	}
	return len(p), nil
}
