package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
)

// nas installs the example's `nas` onto the rig's own installer (the
// debian profile) with three blank disks: fleet evaluates the host from
// the flake with the real nix, then runs every phase (preflight, disko:
// ESP and ext4 root on one disk, an mdadm raid1 with xfs on the other
// two; stage, where the installer fetches the secrets through the scoped
// agent; identity; install, the rig's stand-in nixos-install; scan;
// reboot; verify, every secret decrypted at first boot). The installer's
// sshd is reached through a relay that counts connections: one per boot.
func nas(ctx context.Context, d *demo) error {
	start := time.Now()
	if err := d.buildFleet(ctx); err != nil {
		return err
	}
	d.setUp()
	d.boot("the rig's Debian-based installer, x86_64, with 3 blank disks (2 GiB, 512 MiB, 512 MiB)",
		rig.Options{Disks: []int64{2 << 30, 512 << 20, 512 << 20}})
	relay := sshtest.StartRelay(d.t, fmt.Sprintf("127.0.0.1:%d", d.vm.Port))
	target := "root@" + relay.Addr()
	rebooted := d.rebootWatch(ctx, "nas")
	d.say("fleet install nas --flake %s --target %s --host-key %s ...\n    (the rig boots the installed disks when fleet reboots the machine, as firmware would)",
		d.fl.Dir, target, d.vm.Fingerprint())
	if err := d.fleetRun(ctx, d.fl.InstallArgs("nas", target, d.vm.Identity, d.vm.Fingerprint())...); err != nil {
		return err
	}
	if err := <-rebooted; err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	if err := d.scanOverlay(ctx); err != nil {
		return err
	}
	if n := relay.SSHConnections(); n != 2 {
		return fmt.Errorf("the installer's and the installed system's sshd answered %d connections, want 2 (one per boot)", n)
	}
	d.done(time.Since(start))
	return nil
}
