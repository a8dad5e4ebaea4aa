package disko

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file is what destroy finds on a disk it erases and takes down
// first, as disko's disk-deactivate does: md arrays, LVM volume groups,
// LUKS mappings and other device-mapper devices built on the disk, and
// the signatures on it. On a reused disk (a reinstall, a second-hand
// NAS disk) udev assembles old arrays and activates old volume groups
// at boot, so they hold the disk until then.

// blockDev is a device of a disk's tree: the disk, its partitions, and
// what is built on them (md arrays, dm devices), found through holders.
type blockDev struct {
	name   string // kernel name: sda, sda1, md127, dm-0
	devNum string // major:minor
	depth  int    // 0: the disk and its partitions; 1: their holders...
	dmName string // dm devices: their name (crypted, vg-lv)
	dmUUID string // dm devices: CRYPT-LUKS2-..., LVM-...
	level  string // md arrays: raid1, raid0...
	slaves []string
	fstype string // what blkid finds on it (TYPE, or PTTYPE for a disk)
}

// isMD and the dm kinds, by the uuid device-mapper's users give their
// devices (cryptsetup: CRYPT-, LVM: LVM-).
func (b blockDev) isMD() bool    { return b.level != "" || strings.HasPrefix(b.name, "md") }
func (b blockDev) isCrypt() bool { return strings.HasPrefix(b.dmUUID, "CRYPT-") }
func (b blockDev) isLV() bool    { return strings.HasPrefix(b.dmUUID, "LVM-") }

// label names b for messages: "md127 (raid1)", "dm-0 (crypted)".
func (b blockDev) label() string {
	switch {
	case b.dmName != "":
		return b.name + " (" + b.dmName + ")"
	case b.level != "":
		return b.name + " (" + b.level + ")"
	}
	return b.name
}

// treeScript lists a disk, its partitions and their holders,
// recursively, one device a line: kernel name, major:minor, depth, dm
// name and uuid, md level, slaves, and what blkid finds on it. When one
// holds an LVM physical volume and pvs is there, one line per physical
// volume of the machine follows: its kernel name and volume group.
const treeScript = `cd /sys/class/block || exit 1
[ -e "$1/dev" ] || exit 1
seen=" " lvm=
show() {
  case "$seen" in *" $1 "*) return;; esac
  seen="$seen$1 "
  t=$(blkid -p -o value -s TYPE "/dev/$1" 2>/dev/null) || t=
  [ -n "$t" ] || t=$(blkid -p -o value -s PTTYPE "/dev/$1" 2>/dev/null) || t=
  [ "$t" = LVM2_member ] && lvm=1
  printf 'dev\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(cat "$1/dev")" "$2" "$(cat "$1/dm/name" 2>/dev/null)" \
    "$(cat "$1/dm/uuid" 2>/dev/null)" "$(cat "$1/md/level" 2>/dev/null)" "$(ls "$1/slaves" 2>/dev/null | tr '\n' ,)" "$t"
  for h in "$1"/holders/*; do [ -e "$h" ] && show "${h##*/}" $(($2 + 1)); done
}
show "$1" 0
for p in "$1"/"$1"*; do [ -e "$p/partition" ] && show "${p##*/}" 0; done
if [ -n "$lvm" ] && command -v pvs >/dev/null 2>&1; then
  pvs --noheadings --separator '|' -o pv_name,vg_name 2>/dev/null | while IFS='|' read -r pv vg; do
    pv=$(readlink -f "$(echo $pv)") vg=$(echo $vg)
    printf 'pv\t%s\t%s\n' "${pv##*/}" "$vg"
  done
fi
exit 0`

// tree lists disk's devices and everything built on them, and the
// machine's LVM physical volumes by kernel name (when one is in the
// tree), with their volume group.
func (a *applier) tree(ctx context.Context, disk string) ([]blockDev, map[string]string, error) {
	out, err := a.out(ctx, "sh", "-c", treeScript, "fleet-tree", path.Base(disk))
	if err != nil {
		return nil, nil, err
	}
	devs, pvs := parseTree(string(out))
	return devs, pvs, nil
}

func parseTree(out string) ([]blockDev, map[string]string) {
	var devs []blockDev
	pvs := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		switch {
		case f[0] == "dev" && len(f) >= 4:
			f = append(f, make([]string, 9-len(f))...)
			d := blockDev{name: f[1], devNum: f[2], dmName: f[4], dmUUID: f[5], level: f[6], fstype: f[8]}
			d.depth, _ = strconv.Atoi(f[3])
			for _, s := range strings.Split(f[7], ",") {
				if s != "" {
					d.slaves = append(d.slaves, s)
				}
			}
			devs = append(devs, d)
		case f[0] == "pv" && len(f) == 3 && f[1] != "" && f[2] != "":
			pvs[f[1]] = f[2]
		}
	}
	return devs, pvs
}

// vgOfLV is the volume group of an LV's dm name ("vg-lv"; a "-" within
// either name is doubled, as LVM writes it).
func vgOfLV(dmName string) string {
	for i := 0; i < len(dmName); i++ {
		if dmName[i] != '-' {
			continue
		}
		if i+1 < len(dmName) && dmName[i+1] == '-' {
			i++
			continue
		}
		return strings.ReplaceAll(dmName[:i], "--", "-")
	}
	return ""
}

// outsiders refuses what is built on the disk's tree but also on a device
// outside targets (the kernel names in the trees of every disk destroy
// erases): an array with a member on another disk, an LV or volume group
// with a physical volume there. Taking it down would break what lives on
// a disk the layout does not name.
func outsiders(tree []blockDev, pvs map[string]string, targets map[string]bool) error {
	for _, b := range tree {
		if b.depth == 0 {
			continue
		}
		for _, s := range b.slaves {
			if !targets[s] {
				return fmt.Errorf("%s is built on %s too, which is on none of the layout's disks", b.label(), s)
			}
		}
	}
	for _, vg := range volumeGroups(tree, pvs) {
		for pv, g := range pvs {
			if g == vg && !targets[pv] {
				return fmt.Errorf("LVM volume group %s has a physical volume on %s too, which is on none of the layout's disks", vg, pv)
			}
		}
	}
	return nil
}

// volumeGroups are the volume groups with a physical volume in the tree,
// or an LV built on it, sorted.
func volumeGroups(tree []blockDev, pvs map[string]string) []string {
	var out []string
	add := func(vg string) {
		if vg != "" && !slices.Contains(out, vg) {
			out = append(out, vg)
		}
	}
	for _, b := range tree {
		add(pvs[b.name])
		if b.isLV() {
			add(vgOfLV(b.dmName))
		}
	}
	sort.Strings(out)
	return out
}

// takeDown is one command of a disk's teardown, and what it does ("" for
// nothing to name).
type takeDown struct {
	args []string
	what string
}

// have reports whether the installer has program p.
func (a *applier) have(p string) bool {
	_, ok := a.opt.Tools.Paths[p]
	return ok
}

// teardown is what destroy runs on a disk before wiping it, deepest
// first: each volume group with an LV on the disk deactivated (vgchange
// -a n; each LV removed with dmsetup without LVM's tools), LUKS mappings
// closed (cryptsetup close; dmsetup without it), other dm devices
// removed, md arrays' own signatures wiped (so an array created again
// in the same place does not bring back what it held) and the arrays
// stopped; then the signatures on the disk's partitions. The disk's own
// wipefs is the step's command. have says which programs the installer
// has.
func teardown(tree []blockDev, have func(string) bool) []takeDown {
	byDepth := slices.Clone(tree)
	sort.SliceStable(byDepth, func(i, j int) bool { return byDepth[i].depth > byDepth[j].depth })
	var out []takeDown
	vgs := map[string]bool{}
	for _, b := range byDepth {
		switch {
		case b.depth == 0:
			continue
		case b.isLV() && have("vgchange"):
			vg := vgOfLV(b.dmName)
			if vg == "" || vgs[vg] {
				continue
			}
			vgs[vg] = true
			out = append(out, takeDown{[]string{"vgchange", "-a", "n", "--", vg}, "LVM volume group " + vg + ": deactivated"})
		case b.isCrypt() && have("cryptsetup"):
			out = append(out, takeDown{[]string{"cryptsetup", "close", "--", b.dmName}, "LUKS mapping " + b.dmName + ": closed"})
		case b.dmName != "":
			out = append(out, takeDown{[]string{"dmsetup", "remove", "--retry", "--", b.dmName}, "device-mapper device " + b.dmName + ": removed"})
		case b.isMD():
			dev := "/dev/" + b.name
			out = append(out, takeDown{[]string{"wipefs", "--all", "-f", dev}, signatures(b)})
			of := ""
			if len(b.slaves) > 0 {
				of = " of " + strings.Join(b.slaves, ", ")
			}
			out = append(out, takeDown{[]string{"mdadm", "--stop", dev}, "md array " + b.label() + of + ": stopped"})
		}
	}
	for i, b := range tree {
		if b.depth == 0 && i > 0 { // the partitions; the disk is tree[0]
			out = append(out, takeDown{[]string{"wipefs", "--all", "-f", "/dev/" + b.name}, signatures(b)})
		}
	}
	return out
}

// signatures says what wiping b's signatures erases ("" when blkid finds
// none: wipefs still runs, in case it finds what blkid would not name).
func signatures(b blockDev) string {
	if b.fstype == "" {
		return ""
	}
	return b.name + ": " + b.fstype + " signature wiped"
}

// teardownTools are the programs a tree's teardown runs that the
// installer lacks: mdadm for an array; dmsetup for a dm device when
// neither LVM's tools nor cryptsetup take it down.
func teardownTools(tree []blockDev, have func(string) bool) []string {
	var missing []string
	for _, td := range teardown(tree, have) {
		if p := td.args[0]; !have(p) && !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
	}
	return missing
}
