package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/rig"
)

// zfsDemo installs the example's `tank` onto the rig's ZFS variant with
// three blank disks: an ESP and ext4 root on one, and the pool tank
// mirrored on the other two, with datasets and one encrypted dataset
// whose key is the agenix secret tank-key (given to zfs on stdin at
// install time with --disk-key). Through verify; then it shows, from
// the installed system, that the installer exported the pool and the
// installed system imported it without -f under its own hostid, the
// datasets mounted where the layout says, and the key loaded from
// /run/agenix/tank-key.
func zfsDemo(ctx context.Context, d *demo) error {
	start := time.Now()
	if err := d.buildFleet(ctx); err != nil {
		return err
	}
	d.setUp()
	d.boot("the rig's Debian-based installer with ZFS (zfs-dkms), x86_64, with 3 blank disks (2 GiB, 512 MiB, 512 MiB)",
		rig.Options{ZFS: true, Disks: []int64{2 << 30, 512 << 20, 512 << 20}})
	key := filepath.Join(d.t.TempDir(), "tank.key")
	if err := os.WriteFile(key, []byte(d.fl.Plain["tank-key"]), 0o600); err != nil {
		return err
	}
	rebooted := d.rebootWatch(ctx, "tank")
	target := fmt.Sprintf("root@127.0.0.1:%d", d.vm.Port)
	d.say("fleet install tank --flake %s --target %s --disk-key tank/secret=%s ...\n    (the key reaches zfs on stdin; the installed system loads it from the agenix secret tank-key)",
		d.fl.Dir, target, key)
	if err := d.fleetRun(ctx, append(d.fl.InstallArgs("tank", target, d.vm.Identity, d.vm.Fingerprint()), "--disk-key", "tank/secret="+key)...); err != nil {
		return err
	}
	if err := <-rebooted; err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	d.say("the installed tank: its hostid, the pool's last export (by the installer) and import (by this system, no -f), the datasets, the key")
	out, err := d.vm.Run(ctx, homelab.TankZFSState)
	if err != nil {
		return fmt.Errorf("read the installed system's zfs state: %w", err)
	}
	indent{os.Stdout}.Write([]byte(out))
	if out != homelab.TankZFSWant {
		return fmt.Errorf("the installed tank's zfs state is not what its layout says; want:\n%s", homelab.TankZFSWant)
	}
	if err := d.scanOverlay(ctx); err != nil {
		return err
	}
	d.done(time.Since(start))
	return nil
}
