package disko

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// This file holds what Apply asks the machine about ZFS pools, and the
// checks it makes before any change: no pool on the layout's disks that
// the layout does not have (a foreign pool), none that another system
// imported and did not export, a kept pool really there and its keys
// right. It also takes down the pools on a disk that destroy erases.

// Pool states in a label (zdb -l's state).
const (
	poolActive    = 0 // imported (or was, when its system stopped)
	poolExported  = 1
	poolDestroyed = 2
)

// zfsLabel is what a device's ZFS label says: the pool it belongs to and
// who imported it last.
type zfsLabel struct {
	dev      string // kernel name: vdb1, dm-0
	under    string // the device given to the scan it was found under: vdb
	pool     string // blkid's LABEL: the pool name
	guid     string // the pool guid
	state    int    // poolActive, poolExported...; -1 when zdb is not there to say
	hostid   uint64 // the system that imported it last (0: none recorded)
	hostname string
}

// labelScript prints, for each device given (kernel names) and what is
// built on it (partitions, holders), one "dev NAME GIVEN" line and blkid's udev
// view of it, and for ZFS members the top of zdb -l's first label. It
// ends with the installer's ZFS host id: spl's, else /etc/hostid's.
const labelScript = `seen=" "
scan() {
  n=$1
  case "$seen" in *" $n "*) return;; esac
  seen="$seen$n "
  [ -e "/sys/class/block/$n/dev" ] || return
  echo "dev $n $2"
  out=$(blkid -p -o udev "/dev/$n" 2>/dev/null)
  printf '%s\n' "$out" | grep -E '^ID_FS_(TYPE|LABEL_ENC|UUID)=' | sed 's/^/blkid /'
  case "$out" in *ID_FS_TYPE=zfs_member*)
    if command -v zdb >/dev/null; then
      zdb -l "/dev/$n" 2>/dev/null | awk '/^    (name|state|hostid|hostname|pool_guid): / && !seen[$1]++ { sub(/^ +/, ""); print "zdb " $0 }'
    fi;;
  esac
  for h in /sys/class/block/$n/holders/*; do [ -e "$h" ] && scan "${h##*/}" "$2"; done
  for p in /sys/class/block/$n/$n*; do [ -e "$p/partition" ] && scan "${p##*/}" "$2"; done
}
for d in "$@"; do scan "$d" "$d"; done
if [ -r /sys/module/spl/parameters/spl_hostid ] && [ "$(cat /sys/module/spl/parameters/spl_hostid)" != 0 ]; then
  echo "hostid $(cat /sys/module/spl/parameters/spl_hostid)"
elif [ -r /etc/hostid ]; then
  echo "hostid $(od -An -tu4 -N4 /etc/hostid | tr -d ' ')"
else
  echo "hostid 0"
fi`

// zfsLabels reads the ZFS labels on devs (device paths) and what is built
// on them, and the installer's host id.
func (a *applier) zfsLabels(ctx context.Context, devs []string) ([]zfsLabel, uint64, error) {
	var names []string
	for _, d := range devs {
		names = append(names, path.Base(a.kernelNode(ctx, d)))
	}
	res, err := a.r.Run(ctx, remote.Cmd{Args: append([]string{"sh", "-c", labelScript, "fleet-zfs-labels"}, names...), Label: "fleet-zfs-labels"})
	if err != nil {
		return nil, 0, fmt.Errorf("read the zfs labels: %w", err)
	}
	return parseLabels(string(res.Stdout))
}

func parseLabels(out string) ([]zfsLabel, uint64, error) {
	var labels []zfsLabel
	var hostid uint64
	var cur *zfsLabel
	var dev, under string
	for _, l := range strings.Split(out, "\n") {
		kind, rest, _ := strings.Cut(l, " ")
		k, v, _ := strings.Cut(rest, "=")
		switch kind {
		case "dev":
			dev, under, _ = strings.Cut(rest, " ")
			cur = nil
		case "blkid":
			switch k {
			case "ID_FS_TYPE":
				if v == "zfs_member" {
					labels = append(labels, zfsLabel{dev: dev, under: under, state: -1})
					cur = &labels[len(labels)-1]
				}
			case "ID_FS_LABEL_ENC":
				if cur != nil {
					cur.pool = unescapeLsblk(v) // blkid escapes as lsblk does
				}
			case "ID_FS_UUID":
				if cur != nil {
					cur.guid = v
				}
			}
		case "zdb":
			if cur == nil {
				continue
			}
			k, v, _ := strings.Cut(rest, ": ")
			v = strings.Trim(v, "'")
			switch k {
			case "state":
				cur.state, _ = strconv.Atoi(v)
			case "hostid":
				cur.hostid, _ = strconv.ParseUint(v, 10, 64)
			case "hostname":
				cur.hostname = v
			case "name":
				if cur.pool == "" {
					cur.pool = v
				}
			case "pool_guid":
				if cur.guid == "" {
					cur.guid = v
				}
			}
		case "hostid":
			hostid, _ = strconv.ParseUint(rest, 10, 64)
		}
	}
	return labels, hostid, nil
}

// poolImported reports whether a pool of that name is imported here.
func (a *applier) poolImported(ctx context.Context, name string) (bool, error) {
	_, err := a.out(ctx, "zpool", "list", "-H", "-o", "name", name)
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return false, nil
	}
	return err == nil, err
}

// poolGUID is the guid of the one pool named name among labels ("" for
// none; an error for two: which one is meant?).
func poolGUID(labels []zfsLabel, name string) (string, error) {
	var guids []string
	for _, l := range labels {
		if l.pool == name && l.state != poolDestroyed && l.guid != "" && !slices.Contains(guids, l.guid) {
			guids = append(guids, l.guid)
		}
	}
	switch len(guids) {
	case 0:
		return "", nil
	case 1:
		return guids[0], nil
	}
	return "", fmt.Errorf("two pools named %s (guids %s) on the layout's disks: %w", name, strings.Join(guids, ", "), ErrMismatch)
}

// poolOnMembers is the guid of pool name on the given members, "" if it
// is not there.
func (a *applier) poolOnMembers(ctx context.Context, name string, members []string) (string, error) {
	var devs []string
	for _, m := range members {
		if dev := a.resolve(ctx, m); a.exists(ctx, dev) {
			devs = append(devs, dev)
		}
	}
	if len(devs) == 0 {
		return "", nil
	}
	labels, _, err := a.zfsLabels(ctx, devs)
	if err != nil {
		return "", err
	}
	return poolGUID(labels, name)
}

// zfsPool is a pool found on the layout's disks: its labels, by guid.
type zfsPool struct {
	name, guid string
	devs       []string // kernel names
	under      string   // the disk the first was found on
	state      int
	hostid     uint64
	hostname   string
}

func groupPools(labels []zfsLabel) []*zfsPool {
	var out []*zfsPool
	byGUID := map[string]*zfsPool{}
	for _, l := range labels {
		if l.state == poolDestroyed {
			continue // what zpool destroy left: nobody's pool
		}
		key := l.guid + "/" + l.pool
		p, ok := byGUID[key]
		if !ok {
			p = &zfsPool{name: l.pool, guid: l.guid, under: l.under, state: l.state, hostid: l.hostid, hostname: l.hostname}
			byGUID[key] = p
			out = append(out, p)
		}
		p.devs = append(p.devs, l.dev)
	}
	return out
}

// checkPools refuses, before anything changes, the pools Apply must not
// touch (see the file comment), and takes each pool the run keeps (its
// disks are not erased) through an import that writes nothing (readonly)
// to test its keys. It loads the zfs module first when the layout has
// pools.
func (a *applier) checkPools(ctx context.Context, s *Spec, steps []Step) error {
	if a.opt.Mode.Unmount {
		return nil
	}
	if len(s.Zpools) > 0 {
		// /sys/module/zfs, not /dev/zfs: systemd makes /dev/zfs at boot
		// from the module's devname alias before the module is loaded,
		// and zpool checks /sys/module/zfs before it opens /dev/zfs.
		if _, err := a.out(ctx, "sh", "-c", "[ -d /sys/module/zfs ] || modprobe zfs"); err != nil {
			return refused(withHint(fmt.Errorf("the installer cannot load the zfs kernel module: %w: %w", err, ErrTool), "boot an installer with ZFS (NixOS: boot.supportedFilesystems = [ \"zfs\" ])"))
		}
	}
	labels, hostid, err := a.zfsLabels(ctx, a.disks)
	if err != nil {
		return refused(err)
	}
	ours := map[string]*Node{}
	for _, z := range s.Zpools {
		ours[z.Name] = z
	}
	found := map[string]*zfsPool{}
	for _, p := range groupPools(labels) {
		devs := strings.Join(p.devs, ", ")
		if _, ok := ours[p.name]; !ok {
			return refused(withHint(fmt.Errorf("%s holds zfs pool %q (guid %s), which the layout does not have: %w",
				a.diskOf(p.under, p.devs[0]), escapeRemote(p.name), p.guid, ErrForeignPool),
				"if this is the wrong disk, point the layout at another with --device; if that pool's data is not wanted, clear it on the installer first: zpool labelclear -f /dev/%s", strings.Join(p.devs, " /dev/")))
		}
		if p.state == poolActive && p.hostid != 0 && p.hostid != hostid && (a.opt.HostName == "" || p.hostname != a.opt.HostName) {
			return refused(withHint(fmt.Errorf("zfs pool %q on %s was imported by host %q (hostid %08x) and not exported: it may be in use there: %w",
				p.name, devs, escapeRemote(p.hostname), p.hostid, ErrPoolInUse),
				"export it on that host (zpool export %s); if that host is gone for good, import and export it here: zpool import -f -N %s && zpool export %s", p.name, p.guid, p.name))
		}
		if prev, ok := found[p.name]; ok {
			return refused(fmt.Errorf("two pools named %s on the layout's disks (guids %s on %s, %s on %s): %w", p.name, prev.guid, strings.Join(prev.devs, ", "), p.guid, devs, ErrMismatch))
		}
		found[p.name] = p
	}
	kept := map[string]bool{}
	for i := range steps {
		switch act := steps[i].Action.(type) {
		case *ZpoolCreate:
			if err := a.checkKept(ctx, &steps[i], act, found[steps[i].Device]); err != nil {
				return refused(err)
			}
			kept[steps[i].Device] = act.kept(a)
		case *ZpoolImport:
			// Members behind LUKS, md or LVM show their labels only once
			// the mount phase has opened them: those are found then.
			if !a.opt.Mode.Format && found[steps[i].Device] == nil && a.allExist(ctx, act.Members) {
				if imported, _ := a.poolImported(ctx, steps[i].Device); !imported {
					return refused(fmt.Errorf("%s: no pool %s on the layout's disks to import: %w", steps[i].Node, steps[i].Device, ErrMissingDevice))
				}
			}
		}
	}
	// Keys: every encryption root of a pool that is there and stays (not
	// erased by destroy) must open with its key, tested before anything
	// changes.
	for _, z := range s.Zpools {
		if p := found[z.Name]; p != nil && (!a.opt.Mode.Destroy || kept[z.Name]) {
			if err := a.testKeys(ctx, z, p); err != nil {
				return refused(err)
			}
		}
	}
	return nil
}

// diskOf names the layout's disk (kernel name under) holding kernel
// device dev, for messages: `disk "data1" (/dev/vdb): vdb1`.
func (a *applier) diskOf(under, dev string) string {
	for _, d := range a.disks {
		if path.Base(d) == under {
			return fmt.Sprintf("disk %q (%s): %s", a.diskNames[d], d, dev)
		}
	}
	return dev
}

// checkKept: a pool whose disks are partly kept and partly erased is
// refused; a kept one must be there.
func (a *applier) checkKept(ctx context.Context, st *Step, z *ZpoolCreate, found *zfsPool) error {
	if !a.opt.Mode.Destroy {
		return nil
	}
	var kept, erased []string
	for _, d := range z.Disks {
		if a.keep[d] {
			kept = append(kept, d)
		} else {
			erased = append(erased, d)
		}
	}
	if len(kept) > 0 && len(erased) > 0 {
		return withHint(fmt.Errorf("%s: pool %s is on disks this run keeps (%s) and disks it erases (%s): %w", st.Node, st.Device,
			strings.Join(kept, ", "), strings.Join(erased, ", "), ErrMismatch), "keep all of the pool's disks, or none")
	}
	if z.kept(a) && found == nil && a.allExist(ctx, z.Members) {
		if imported, _ := a.poolImported(ctx, st.Device); !imported {
			return withHint(fmt.Errorf("%s: pool %s is not on its disks (%s), which this run keeps: %w", st.Node, st.Device, strings.Join(kept, ", "), ErrMismatch),
				"a kept pool is imported, never created: check the --device paths, or let the run erase those disks")
		}
	}
	return nil
}

// allExist reports whether every device of devs is there now.
func (a *applier) allExist(ctx context.Context, devs []string) bool {
	for _, d := range devs {
		if !a.exists(ctx, a.resolve(ctx, d)) {
			return false
		}
	}
	return true
}

// testKeys checks every encryption root of pool z against its key with
// zfs load-key -n (a dry run), the pool imported read-only for it when it
// is not imported, and exported again after.
func (a *applier) testKeys(ctx context.Context, z *Node, p *zfsPool) error {
	var roots []*Node
	for _, ds := range z.Datasets {
		if ds.EncryptionRoot() && len(a.opt.Keys[ds.Name]) > 0 {
			roots = append(roots, ds)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	imported, err := a.poolImported(ctx, z.Name)
	if err != nil {
		return err
	}
	if !imported {
		if err := a.run(ctx, &Step{Node: z.Path}, []string{"zpool", "import", "-N", "-f", "-o", "readonly=on", "-R", a.opt.Plan.Root, p.guid}); err != nil {
			return fmt.Errorf("%s: import pool %s read-only to test its keys: %w", z.Path, z.Name, err)
		}
		defer a.out(context.WithoutCancel(ctx), "zpool", "export", z.Name)
	}
	for _, ds := range roots {
		if keyStatus(ctx, a, ds.Name) == "available" {
			continue
		}
		err := a.run(ctx, &Step{Node: ds.Path, KeyName: ds.Name}, []string{"zfs", "load-key", "-n", "-L", "prompt", ds.Name})
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			return withHint(fmt.Errorf("%s: the key given for %s does not open it (zfs load-key: %s): %w", ds.Path, ds.Name, escapeRemote(strings.Join(ee.Stderr, "; ")), ErrWrongKey),
				"pass the dataset's key: --disk-key %s=FILE", ds.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// zfsTeardown takes down, for destroy, the pools on the devices of a disk
// it erases: a pool still imported is destroyed (zpool destroy -f), and
// every ZFS label is cleared (zpool labelclear -f), as disko's
// disk-deactivate does; wipefs alone leaves labels zpool import finds.
func (a *applier) zfsTeardown(ctx context.Context, st *Step, tree []blockDev) error {
	var devs []string
	for _, b := range tree {
		devs = append(devs, "/dev/"+b.name)
	}
	labels, _, err := a.zfsLabels(ctx, devs)
	if err != nil || len(labels) == 0 {
		return err
	}
	for _, p := range groupPools(labels) {
		if imported, _ := a.poolImported(ctx, p.name); imported {
			a.log.Info("take down", "pool", p.name, "cmd", "zpool destroy -f")
			if err := a.run(ctx, st, []string{"zpool", "destroy", "-f", p.name}); err != nil {
				return err
			}
		}
	}
	for _, l := range labels {
		if err := a.run(ctx, st, []string{"zpool", "labelclear", "-f", "/dev/" + l.dev}); err != nil {
			return err
		}
	}
	return nil
}

// underDisks are the names of the layout's disks under top-level device
// ref ("zpool.KEY", "mdadm.KEY", "lvm_vg.KEY"), through the arrays, volume
// groups and pools between.
func underDisks(s *Spec, ref string) []string {
	deps := dependencies(s)
	byName := map[string]string{} // "mdadm.NAME" -> "mdadm.KEY"
	for _, n := range slices.Concat(s.MDs, s.VGs, s.Zpools) {
		byName[n.Type+"."+n.Name] = n.Type + "." + n.Key
	}
	var out []string
	seen := map[string]bool{}
	var walk func(string)
	walk = func(ref string) {
		if seen[ref] {
			return
		}
		seen[ref] = true
		for _, d := range deps[ref] {
			if name, ok := strings.CutPrefix(d, "disk."); ok {
				if !slices.Contains(out, name) {
					out = append(out, name)
				}
			} else if key, ok := byName[d]; ok {
				walk(key)
			}
		}
	}
	walk(ref)
	return out
}
