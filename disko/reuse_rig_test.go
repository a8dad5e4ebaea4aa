package disko

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/rig"
)

// nasLayout is the example's nas on the rig's first three disks: an ESP
// and a root on vda, vdb1 and vdc1 in an md raid1 with xfs.
const nasLayout = `{"disk": {
  "main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat", "mountpoint": "/boot"}},
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "data1": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}},
  "data2": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}}},
 "mdadm": {"data": {"type": "mdadm", "level": 1, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}`

// asAtBoot stops what the script built and lets udev bring it back as
// it does when an installer boots: arrays assembled, volume groups
// activated (LUKS stays as the script left it: udev opens none).
const asAtBoot = `vgchange -a n >/dev/null 2>&1 || true
mdadm --stop --scan
udevadm trigger --action=add --subsystem-match=block
udevadm settle
sleep 2
udevadm settle`

// activeArray is a running raid1 in /proc/mdstat (udev's incremental
// assembly starts it auto-read-only).
var activeArray = regexp.MustCompile(`(?m)^(md[0-9]+) : active (?:\(auto-read-only\) )?raid1 .*$`)

// TestReusedDisksOnRig (#16 item 4), in one boot of the rig: disks that
// hold an old install, brought up as an installer's udev does at boot (an
// md raid1 holding an LVM volume group with an active LV, a LUKS
// container left open, filesystems). Destroy names everything it takes
// down in the typed confirmation, takes it down as disko's
// disk-deactivate does, and lays out the new layout: no trace of the old
// volume group comes back on the new array. Then an array spanning a
// layout disk and one outside the layout is refused by name before
// anything changes.
func TestReusedDisksOnRig(t *testing.T) {
	rig.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	_, c := bootRig(ctx, t, rig.Options{Disks: []int64{1 << 30, 512 << 20, 512 << 20, 512 << 20}})
	sh := func(script string) string { t.Helper(); return runOn(t, c, "sh", "-ec", script) }
	s, err := Parse([]byte(nasLayout))
	if err != nil {
		t.Fatal(err)
	}

	sh(`sgdisk --clear -n1:0:+64M -n2:0:0 /dev/vda >/dev/null
for d in vdb vdc; do sgdisk --clear -n1:0:0 -t1:FD00 /dev/$d >/dev/null; done
udevadm settle
mdadm --create /dev/md/old --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --run /dev/vdb1 /dev/vdc1 2>/dev/null
pvcreate -q /dev/md/old; vgcreate -q old /dev/md/old; lvcreate -q -y -n home -l 100%FREE old
mkfs.ext4 -q /dev/old/home; mkfs.ext4 -q /dev/vda1
printf 'old key' | cryptsetup -q luksFormat --pbkdf pbkdf2 --pbkdf-force-iterations 1000 /dev/vda2 --key-file=-
printf 'old key' | cryptsetup open /dev/vda2 oldcrypt --key-file=-
` + asAtBoot)
	md := activeArray.FindStringSubmatch(sh("cat /proc/mdstat"))
	if md == nil || !strings.Contains(sh("lvs --noheadings -o lv_attr old/home"), "a") {
		t.Fatalf("udev did not bring the old install up:\n%s\n%s", sh("cat /proc/mdstat"), sh("lvs; dmsetup ls"))
	}
	old := md[1]
	if !strings.Contains(md[0], "vdb1") || !strings.Contains(md[0], "vdc1") {
		t.Fatalf("the old array: %s", md[0])
	}

	var asked []Target
	opt := ApplyOptions{Mode: Mode{Destroy: true, Format: true, Mount: true}, Plan: Options{Root: "/mnt/nas"},
		Confirm: func(ts []Target) bool { asked = ts; return true }}
	if err := Apply(ctx, c, s, opt); err != nil {
		t.Fatalf("destroy,format,mount over the old install: %v", err)
	}
	want := map[string][]string{
		"main": {"LUKS mapping oldcrypt: closed", "vda1: ext4 signature wiped", "vda2: crypto_LUKS signature wiped"},
		"data1": {"LVM volume group old: deactivated", old + ": LVM2_member signature wiped",
			"md array " + old + " (raid1) of vdb1, vdc1: stopped", "vdb1: linux_raid_member signature wiped"},
		"data2": {"vdc1: linux_raid_member signature wiped"},
	}
	if len(asked) != 3 {
		t.Fatalf("confirmation asked for %+v", asked)
	}
	for _, a := range asked {
		if !slices.Equal(a.TakeDown, want[a.Name]) {
			t.Errorf("confirmation for %s names %q\nwant %q", a.Name, a.TakeDown, want[a.Name])
		}
	}
	if out, err := c.Run(ctx, remote.Cmd{Args: []string{"vgs", "old"}}); err == nil {
		t.Errorf("the old volume group is still there: %s", out.Stdout)
	}
	if _, err := c.Run(ctx, remote.Cmd{Args: []string{"cryptsetup", "status", "oldcrypt"}}); err == nil {
		t.Error("the old LUKS mapping is still open")
	}
	if ms := mountsUnder(t, c, "/mnt/nas"); !slices.ContainsFunc(ms, func(m string) bool { return strings.HasPrefix(m, "/srv/data xfs /dev/md") }) {
		t.Fatalf("mounts: %q", ms)
	}
	if err := Apply(ctx, c, s, ApplyOptions{Mode: Mode{Unmount: true}, Plan: Options{Root: "/mnt/nas"}}); err != nil {
		t.Fatal(err)
	}

	// An array on vdb1 (the layout's) and vdd1 (outside the layout).
	sh(`mdadm --stop --scan
for p in /dev/vdb1 /dev/vdc1; do if [ -b $p ]; then wipefs -q -a $p; fi; done
wipefs -q -a /dev/vdb /dev/vdc /dev/vdd
for d in vdb vdd; do sgdisk --clear -n1:0:0 -t1:FD00 /dev/$d >/dev/null; done
udevadm settle
mdadm --create /dev/md/span --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --run /dev/vdb1 /dev/vdd1
` + asAtBoot)
	md = activeArray.FindStringSubmatch(sh("cat /proc/mdstat"))
	if md == nil || !strings.Contains(md[0], "vdb1") || !strings.Contains(md[0], "vdd1") {
		t.Fatalf("udev did not assemble the spanning array:\n%s", sh("cat /proc/mdstat"))
	}
	before := sh("sgdisk -p /dev/vdb; sgdisk -p /dev/vdd; blkid -p /dev/vdb1 /dev/vdd1; cat /proc/mdstat")
	asked = nil
	err = Apply(ctx, c, s, opt)
	wantErr := `disk "data1" (/dev/vdb): ` + md[1] + ` (raid1) is built on vdd1 too, which is on none of the layout's disks: disk in use: no changes made` +
		"\nhint: take it down yourself if you mean to break it up, or add that disk to the layout: destroy erases only the layout's disks"
	if !errors.Is(err, ErrRefused) || err.Error() != wantErr {
		t.Fatalf("spanning array:\ngot  %v\nwant %s", err, wantErr)
	}
	if asked != nil {
		t.Error("the confirmation was asked for before the refusal")
	}
	if after := sh("sgdisk -p /dev/vdb; sgdisk -p /dev/vdd; blkid -p /dev/vdb1 /dev/vdd1; cat /proc/mdstat"); after != before {
		t.Errorf("the disks changed:\nbefore\n%s\nafter\n%s", before, after)
	}
}
