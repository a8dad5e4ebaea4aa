package disko

import (
	"reflect"
	"strings"
	"testing"
)

// oldInstall is treeScript's output for vdb of an old install as udev
// brings it up at boot: an md raid1 of vdb1 and vdc1 holding an LVM
// physical volume, whose volume group old-vg has an LV on it; vdd2 holds
// an open LUKS mapping.
const oldInstall = "dev\tvdb\t254:16\t0\t\t\t\t\tgpt\n" +
	"dev\tvdb1\t254:17\t0\t\t\t\t\tlinux_raid_member\n" +
	"dev\tmd127\t9:127\t1\t\t\traid1\tvdb1,vdc1,\tLVM2_member\n" +
	"dev\tdm-0\t253:0\t2\told--vg-root\tLVM-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\t\tmd127,\text4\n" +
	"pv\tmd127\told-vg\n" +
	"pv\tvdd3\tother\n"

func have(ps ...string) func(string) bool {
	return func(p string) bool {
		for _, x := range ps {
			if x == p {
				return true
			}
		}
		return false
	}
}

// TestTeardown: what destroy runs on an old install's disk, deepest first,
// with LVM's tools, mdadm and cryptsetup on the installer and without
// them.
func TestTeardown(t *testing.T) {
	tree, pvs := parseTree(oldInstall)
	if len(tree) != 4 || !reflect.DeepEqual(pvs, map[string]string{"md127": "old-vg", "vdd3": "other"}) {
		t.Fatalf("parse: %+v %v", tree, pvs)
	}
	if vg := vgOfLV("old--vg-root"); vg != "old-vg" {
		t.Fatalf("vgOfLV = %q", vg)
	}
	got := func(h func(string) bool) string {
		var lines []string
		for _, td := range teardown(tree, h) {
			lines = append(lines, strings.Join(td.args, " ")+" # "+td.what)
		}
		return strings.Join(lines, "\n")
	}
	want := `vgchange -a n -- old-vg # LVM volume group old-vg: deactivated
wipefs --all -f /dev/md127 # md127: LVM2_member signature wiped
mdadm --stop /dev/md127 # md array md127 (raid1) of vdb1, vdc1: stopped
wipefs --all -f /dev/vdb1 # vdb1: linux_raid_member signature wiped`
	if g := got(have("vgchange", "mdadm", "wipefs", "dmsetup")); g != want {
		t.Fatalf("teardown:\n%s\nwant\n%s", g, want)
	}
	// Without LVM's tools the LV goes through dmsetup.
	if g := got(have("mdadm", "wipefs", "dmsetup")); !strings.HasPrefix(g, "dmsetup remove --retry -- old--vg-root # device-mapper device old--vg-root: removed\n") {
		t.Fatalf("without vgchange:\n%s", g)
	}
	if m := teardownTools(tree, have("wipefs", "dmsetup")); !reflect.DeepEqual(m, []string{"mdadm"}) {
		t.Fatalf("missing tools: %v", m)
	}
}

// TestOutsiders: what is also built on a disk outside the layout is named.
func TestOutsiders(t *testing.T) {
	tree, pvs := parseTree(oldInstall)
	targets := map[string]bool{"vdb": true, "vdb1": true, "vdc": true, "vdc1": true, "md127": true, "dm-0": true}
	if err := outsiders(tree, pvs, targets); err != nil {
		t.Fatalf("within the layout: %v", err)
	}
	delete(targets, "vdc1")
	if err := outsiders(tree, pvs, targets); err == nil || err.Error() != "md127 (raid1) is built on vdc1 too, which is on none of the layout's disks" {
		t.Fatalf("array spanning: %v", err)
	}
	targets["vdc1"] = true
	pvs["vde1"] = "old-vg"
	if err := outsiders(tree, pvs, targets); err == nil || err.Error() != "LVM volume group old-vg has a physical volume on vde1 too, which is on none of the layout's disks" {
		t.Fatalf("volume group spanning: %v", err)
	}
}
