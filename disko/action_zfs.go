package disko

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fleetnix/fleet/remote"
)

// The ZFS actions. A pool is created only when none of its name is on
// its members; one that is there is imported instead (disko does the
// same), and in the mount phase, or on disks a reinstall keeps, a pool is
// only ever imported ([ZpoolImport]); Apply's checks before any change
// (zfs_pools.go) refuse what is not safe to import.
//
// Keys: an encryption root is created with keylocation=prompt and its
// key (--disk-key with the dataset's name) on zfs's stdin, which zfs
// reads when stdin is not a terminal; the layout's keylocation
// (file:///run/agenix/..., prompt) is set right after. Loading a key
// (zfs load-key -L prompt) reads it from stdin too. So the key is never
// written to a file on the installer, and a keylocation that names a
// file the booted system provides (an agenix secret) needs no such file
// at install time, where disko's zfs create would read it.

// ZpoolCreate creates a pool from its members with zpool create -f -R
// ROOT, or imports it when it is there already (a kept disk, or a format
// run over a laid-out machine), by the guid its labels on the members
// carry. A member holding something else is a mismatch unless wiping.
// After creating it, its root filesystem is unmounted if zpool mounted
// it, as disko does: the mount phase mounts what the layout says.
type ZpoolCreate struct {
	Members []string // the devices of its members, in creation order
	Disks   []string // the layout's disks under it
}

func (*ZpoolCreate) Kind() string { return "zpool" }

// kept reports whether the run keeps the pool: a destroy that erases
// none of its disks (destroy = false, a kept disk). A kept pool is
// imported, never created. (A pool with some disks kept and some erased
// is refused before anything runs.)
func (z *ZpoolCreate) kept(a *applier) bool {
	if !a.opt.Mode.Destroy || len(z.Disks) == 0 {
		return false
	}
	for _, d := range z.Disks {
		if !a.keep[d] {
			return false
		}
	}
	return true
}

func (z *ZpoolCreate) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	if imported, err := a.poolImported(ctx, st.Device); err != nil || imported {
		return imported, err
	}
	if g, err := a.poolOnMembers(ctx, st.Device, z.Members); err != nil || g != "" {
		return false, err // act imports it
	}
	if z.kept(a) {
		return false, withHint(fmt.Errorf("%s: pool %s is not on its disks, which this run keeps: %w", st.Node, st.Device, ErrMismatch),
			"a kept pool is imported, never created: check the --device paths, or let the run erase those disks")
	}
	for _, m := range z.Members {
		dev := a.resolve(ctx, m)
		if !a.exists(ctx, dev) {
			continue // made by an earlier step
		}
		t, err := a.blkType(ctx, dev, true)
		if err != nil {
			return false, err
		}
		if t != "" && t != "zfs_member" && !a.wipe(st) {
			return false, mismatch(st.Node, fmt.Sprintf("member %s holds %s, the layout wants it in pool %s", dev, t, st.Device))
		}
	}
	return false, nil
}

func (z *ZpoolCreate) act(ctx context.Context, a *applier, st *Step) error {
	guid, err := a.poolOnMembers(ctx, st.Device, z.Members)
	if err != nil {
		return err
	}
	if guid != "" {
		a.log.Info("pool found on its members: importing it", "pool", st.Device, "guid", guid)
		return a.run(ctx, &Step{Node: st.Node}, []string{"zpool", "import", "-N", "-f", "-R", a.opt.Plan.Root, guid})
	}
	if z.kept(a) {
		return fmt.Errorf("%s: pool %s is not on its kept disks: %w", st.Node, st.Device, ErrMismatch)
	}
	if a.wipe(st) {
		for _, m := range z.Members {
			if dev := a.resolve(ctx, m); a.exists(ctx, dev) {
				if err := a.run(ctx, &Step{Node: st.Node}, []string{"wipefs", "--all", "-f", dev}); err != nil {
					return err
				}
			}
		}
	}
	if err := a.runCmds(ctx, st); err != nil {
		return err
	}
	if out, err := a.out(ctx, "zfs", "get", "-H", "-o", "value", "mounted", st.Device); err == nil && strings.TrimSpace(string(out)) == "yes" {
		return a.run(ctx, &Step{Node: st.Node}, []string{"zfs", "unmount", st.Device})
	}
	return nil
}

func (*ZpoolCreate) verify(ctx context.Context, a *applier, st *Step) error {
	if imported, _ := a.poolImported(ctx, st.Device); !imported {
		return fmt.Errorf("pool %s is not imported after zpool create: %w", st.Device, ErrVerify)
	}
	return nil
}

// ZfsDataset makes a dataset (zfs create; a volume's device awaited) or,
// for one that exists (and for the pool's root filesystem), sets the
// layout's properties where they differ, as disko's zfs set does. A
// dataset of the other type, or whose encryption differs, is a mismatch:
// zfs sets those only at creation.
type ZfsDataset struct {
	Root    bool              // the pool's root filesystem: made by zpool create
	Volume  string            // a volume's device, "" for a filesystem
	Update  map[string]string // what zfs set sets on an existing dataset
	Onetime map[string]string // what only zfs create sets
}

func (*ZfsDataset) Kind() string { return "zfs" }

// diffs are the properties of the existing dataset that differ from the
// layout's; exists is false when there is no such dataset.
func (d *ZfsDataset) diffs(ctx context.Context, a *applier, st *Step) (diff map[string]string, exists bool, err error) {
	names := append(sortedKeys(d.Update), "type", "encryption", "keyformat")
	out, err := a.out(ctx, "zfs", "get", "-H", "-p", "-o", "property,value", strings.Join(names, ","), st.Device)
	if err != nil {
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			return nil, false, nil // no such dataset
		}
		return nil, false, err
	}
	have := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "\t"); ok {
			have[k] = v
		}
	}
	wantType := "filesystem"
	if d.Volume != "" {
		wantType = "volume"
	}
	if have["type"] != wantType {
		return nil, true, mismatch(st.Node, fmt.Sprintf("%s is a %s, the layout wants a %s", st.Device, have["type"], wantType))
	}
	encrypted := have["encryption"] != "" && have["encryption"] != "off" && have["encryption"] != "-"
	if f := d.Onetime["keyformat"]; f != "" && (!encrypted || have["keyformat"] != f) {
		return nil, true, withHint(fmt.Errorf("%s: %s has encryption %s and keyformat %s, the layout wants keyformat %s: %w",
			st.Node, st.Device, have["encryption"], have["keyformat"], f, ErrMismatch), "zfs sets encryption only when it creates a dataset: destroy it (zfs destroy) to have it made anew")
	}
	root := ""
	if r, err := a.out(ctx, "zpool", "get", "-H", "-o", "value", "altroot", strings.SplitN(st.Device, "/", 2)[0]); err == nil {
		if root = strings.TrimSpace(string(r)); root == "-" {
			root = ""
		}
	}
	diff = map[string]string{}
	for k, want := range d.Update {
		if !sameProp(k, have[k], want, root) {
			diff[k] = want
		}
	}
	return diff, true, nil
}

// sameProp compares a property's value as zfs get -p shows it with the
// layout's: numbers by value (1M is 1048576), names case-blind and by
// their aliases, a mountpoint under the pool's altroot.
func sameProp(k, have, want, altroot string) bool {
	if strings.EqualFold(have, want) {
		return true
	}
	if k == "mountpoint" && altroot != "" && strings.HasPrefix(want, "/") {
		return have == strings.TrimSuffix(altroot+want, "/") || (want == "/" && have == altroot)
	}
	aliases := map[string]string{"posixacl": "posix", "noacl": "off"}
	if a, ok := aliases[strings.ToLower(want)]; ok && strings.EqualFold(have, a) {
		return true
	}
	h, ok1 := zfsNumber(have)
	w, ok2 := zfsNumber(want)
	return ok1 && ok2 && h == w
}

// zfsNumber reads a zfs number: digits, a decimal part, a unit K to E
// (binary), an optional B.
func zfsNumber(s string) (float64, bool) {
	s = strings.TrimSuffix(strings.ToUpper(s), "B")
	shift := 0
	if i := strings.IndexAny(s, "KMGTPE"); i >= 0 && i == len(s)-1 {
		shift = 10 * (1 + strings.IndexByte("KMGTPE", s[i]))
		s = s[:i]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	return f * math.Pow(2, float64(shift)), true
}

func (d *ZfsDataset) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	diff, exists, err := d.diffs(ctx, a, st)
	if err != nil || !exists {
		return false, err
	}
	return len(diff) == 0, nil
}

func (d *ZfsDataset) act(ctx context.Context, a *applier, st *Step) error {
	diff, exists, err := d.diffs(ctx, a, st)
	if err != nil {
		return err
	}
	if !exists {
		if d.Root {
			return fmt.Errorf("pool %s has no root filesystem: %w", st.Device, ErrVerify)
		}
		if err := a.runCmds(ctx, st); err != nil {
			return err
		}
		return d.waitVolume(ctx, a)
	}
	// An existing dataset: what differs, as disko's zfs set -u (-u, not
	// to mount it, came with OpenZFS 2.2; before that zfs mounts a
	// filesystem whose mountpoint is set, which the mount phase then
	// finds done).
	args := []string{"zfs", "set"}
	if versionAtLeast(a.opt.Tools.Versions["zfs"], "2.2") && a.opt.Tools.Versions["zfs"] != "" {
		args = append(args, "-u")
	}
	args = append(append(args, propArgs("", diff)...), st.Device)
	return a.run(ctx, &Step{Node: st.Node}, args)
}

// waitVolume waits for a new volume's device: udev makes /dev/zvol/POOL/NAME
// (disko runs zvol_wait and udevadm settle).
func (d *ZfsDataset) waitVolume(ctx context.Context, a *applier) error {
	if d.Volume == "" {
		return nil
	}
	for i := 0; i < 60; i++ {
		if a.udev {
			a.out(ctx, "udevadm", "settle", "--timeout=10")
		}
		if a.exists(ctx, d.Volume) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not appear after zfs create (udev makes it): %w", d.Volume, ErrVerify)
}

func (d *ZfsDataset) verify(ctx context.Context, a *applier, st *Step) error {
	diff, exists, err := d.diffs(ctx, a, st)
	switch {
	case err != nil:
		return err
	case !exists:
		return fmt.Errorf("dataset %s missing after zfs create: %w", st.Device, ErrVerify)
	case len(diff) > 0:
		return fmt.Errorf("dataset %s has %s after zfs set, want %s: %w", st.Device, strings.Join(sortedKeys(diff), ", "), strings.Join(propArgs("", diff), " "), ErrVerify)
	}
	return nil
}

// ZpoolImport imports a pool for the mount phase (disko's zpool import,
// without -l: keys are loaded from stdin by [ZfsLoadKey]; with -N: the
// mount steps mount what the layout says), by the guid its labels on its
// members carry, so that a namesake elsewhere is never imported.
// It never creates one.
type ZpoolImport struct {
	Members []string // the devices of its members
}

func (*ZpoolImport) Kind() string { return "zpool-import" }

func (*ZpoolImport) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return a.poolImported(ctx, st.Device)
}

func (z *ZpoolImport) act(ctx context.Context, a *applier, st *Step) error {
	guid, err := a.poolOnMembers(ctx, st.Device, z.Members)
	if err != nil {
		return err
	}
	if guid == "" {
		return fmt.Errorf("%s: no pool %s on the layout's disks to import: %w", st.Node, st.Device, ErrMissingDevice)
	}
	args := append(append([]string(nil), st.Cmds[0][:len(st.Cmds[0])-1]...), guid)
	return a.run(ctx, st, args)
}

func (*ZpoolImport) verify(ctx context.Context, a *applier, st *Step) error {
	if imported, _ := a.poolImported(ctx, st.Device); !imported {
		return fmt.Errorf("pool %s is not imported after zpool import: %w", st.Device, ErrVerify)
	}
	return nil
}

// ZfsLoadKey loads an encryption root's key from stdin (zfs load-key -L
// prompt), unless it is loaded.
type ZfsLoadKey struct{}

func (*ZfsLoadKey) Kind() string { return "zfs-load-key" }

// keyStatus is zfs's keystatus of dataset ds: available, unavailable, or
// "" when it cannot tell (no such dataset, pool not imported).
func keyStatus(ctx context.Context, a *applier, ds string) string {
	out, err := a.out(ctx, "zfs", "get", "-H", "-o", "value", "keystatus", ds)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func (*ZfsLoadKey) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return keyStatus(ctx, a, st.Device) == "available", nil
}

func (*ZfsLoadKey) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*ZfsLoadKey) verify(ctx context.Context, a *applier, st *Step) error {
	if s := keyStatus(ctx, a, st.Device); s != "available" {
		return fmt.Errorf("key of %s is %q after zfs load-key: %w", st.Device, s, ErrVerify)
	}
	return nil
}

// ZfsUnloadKey unloads an encryption root's key before its pool is
// exported.
type ZfsUnloadKey struct{}

func (*ZfsUnloadKey) Kind() string { return "zfs-unload-key" }

func (*ZfsUnloadKey) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return keyStatus(ctx, a, st.Device) != "available", nil
}

func (*ZfsUnloadKey) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*ZfsUnloadKey) verify(ctx context.Context, a *applier, st *Step) error {
	if keyStatus(ctx, a, st.Device) == "available" {
		return fmt.Errorf("key of %s still loaded after zfs unload-key: %w", st.Device, ErrVerify)
	}
	return nil
}

// ZpoolExport exports a pool (unmount phase), so that the next system to
// boot imports it cleanly.
type ZpoolExport struct{}

func (*ZpoolExport) Kind() string { return "zpool-export" }

func (*ZpoolExport) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	imported, err := a.poolImported(ctx, st.Device)
	return !imported, err
}

func (*ZpoolExport) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*ZpoolExport) verify(ctx context.Context, a *applier, st *Step) error {
	if imported, _ := a.poolImported(ctx, st.Device); imported {
		return fmt.Errorf("pool %s still imported after zpool export: %w", st.Device, ErrVerify)
	}
	return nil
}
