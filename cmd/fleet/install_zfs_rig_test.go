package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/rig"
)

// diskSums are the SHA-256 sums of the VM's target disk images, read
// from the host.
func (ri *rigInstall) diskSums() []string {
	ri.t.Helper()
	var out []string
	for _, d := range ri.vm.Disks {
		f, err := os.Open(d)
		if err != nil {
			ri.t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			ri.t.Fatal(err)
		}
		out = append(out, hex.EncodeToString(h.Sum(nil)))
	}
	return out
}

// unchanged fails t when a disk image's sum differs from before.
func (ri *rigInstall) unchanged(what string, before []string) {
	ri.t.Helper()
	for i, s := range ri.diskSums() {
		if s != before[i] {
			ri.t.Errorf("%s: %s changed", what, filepath.Base(ri.vm.Disks[i]))
		}
	}
}

// TestInstallZFSOnRig installs the example's `tank` (a system disk, and a
// ZFS mirror of two disks with datasets and one encrypted dataset keyed
// by the agenix secret tank-key) on the rig's ZFS variant: one installer
// boot, one installed boot. On the installer, first the refusals, each by
// exact error with the disk images' sums unchanged (read from the host):
// a foreign pool on a data disk, then (after an install interrupted once
// the disks are laid out, which exports the pool) a --resume with a
// wrong key for the encrypted dataset. Then --resume with the right key
// installs, reboots and verifies; on the installed system (the rig's
// stand-in for NixOS's zfs boot, see test/rig/nixos-install) the pool
// was exported by the installer and imported without -f under tank's
// hostid, the datasets are mounted where the layout says, and the
// encrypted one's key was loaded from /run/agenix/tank-key. Last, the
// installer booted again over the installed disks reinstalls tank with
// the mirror's disks kept (destroy = false): the pool (its guid) and the
// datasets' files (their SHA-256) are unchanged.
func TestInstallZFSOnRig(t *testing.T) {
	start := time.Now()
	ri := newRigInstallWith(t, rig.Options{ZFS: true, Disks: []int64{2 << 30, 512 << 20, 512 << 20}})
	t.Logf("installer up in %s", time.Since(start).Round(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	dir := t.TempDir()
	key := filepath.Join(dir, "tank.key")
	wrong := filepath.Join(dir, "wrong.key")
	os.WriteFile(key, []byte(ri.fl.Plain["tank-key"]), 0o600)
	os.WriteFile(wrong, []byte("not-the-tank-key\n"), 0o600)
	args := ri.args("tank")

	t.Run("foreign_pool", func(t *testing.T) {
		ri.say("a pool no layout has, on data2 (/dev/vdc), exported: fleet install tank must refuse")
		guid := strings.TrimSpace(ri.vm.MustRun(t, `set -e; modprobe zfs
zpool create -f old /dev/vdc
zpool get -H -o value guid old
zpool export old`))
		before := ri.diskSums()
		step := time.Now()
		r := ri.run(ctx, nil, nil, append(args, "--disk-key", "tank/secret="+key)...)
		t.Logf("refused in %s", time.Since(step).Round(time.Second))
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		for _, w := range []string{
			`(?m)^error: preflight: disk "data2" \(/dev/vdc\): vdc1 holds zfs pool "old" \(guid ` + guid + `\), which the layout does not have: zfs pool not in the layout: no changes made$`,
			`(?m)^hint: if this is the wrong disk, point the layout at another with --device; if that pool's data is not wanted, clear it on the installer first: zpool labelclear -f /dev/vdc1$`,
		} {
			if !regexp.MustCompile(w).MatchString(r.stderr) {
				t.Errorf("stderr lacks %s:\n%s", w, r.stderr)
			}
		}
		ri.unchanged("refused for a foreign pool", before)
		// As the hint says. Then the module goes, as on an installer that
		// has not touched ZFS since it booted (/dev/zfs is there all the
		// same): fleet must load it itself.
		ri.vm.MustRun(t, "zpool labelclear -f /dev/vdc1 && rmmod zfs && [ -e /dev/zfs ] && [ ! -d /sys/module/zfs ]")
	})
	if t.Failed() {
		return
	}

	// The install, interrupted once the stage phase starts (after disko
	// laid out the disks): fleet unmounts, which exports the pool.
	ri.say("fleet install tank ... --disk-key tank/secret=FILE, interrupted (SIGINT) as the stage phase starts")
	step := time.Now()
	sent := false
	r := ri.run(ctx, nil, func(line string, p *os.Process) {
		if !sent && phaseStarted(line, "stage") {
			sent = true
			p.Signal(os.Interrupt)
		}
	}, append(args, "--disk-key", "tank/secret="+key)...)
	t.Logf("preflight and disko, then interrupted, in %s", time.Since(step).Round(time.Second))
	if !sent || r.code != 1 || !strings.Contains(r.stderr, "the disks are partitioned and formatted and unmounted; fleet install --resume continues") {
		t.Fatalf("want the install interrupted at stage with the disks unmounted: %s", r)
	}
	if out := ri.vm.MustRun(t, "zpool list -H -o name; zpool import | grep -E '^ +(pool|state):'"); !regexp.MustCompile(`^ +pool: tank\n +state: ONLINE\n$`).MatchString(out) {
		t.Fatalf("want tank exported (not imported, importable):\n%s", out)
	}

	t.Run("wrong_key", func(t *testing.T) {
		ri.say("fleet install tank --resume with a wrong key for tank/secret: must refuse, the disks untouched")
		before := ri.diskSums()
		r := ri.run(ctx, nil, nil, append(args, "--disk-key", "tank/secret="+wrong, "--resume")...)
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		for _, w := range []string{
			`(?m)^error: preflight: zpool\.tank\.datasets\.secret: the key given for tank/secret does not open it \(zfs load-key: Key load error: Incorrect key provided for 'tank/secret'\.\): wrong key: no changes made$`,
			`(?m)^hint: pass the dataset's key: --disk-key tank/secret=FILE$`,
		} {
			if !regexp.MustCompile(w).MatchString(r.stderr) {
				t.Errorf("stderr lacks %s:\n%s", w, r.stderr)
			}
		}
		ri.unchanged("refused for a wrong key", before)
		if out := ri.vm.MustRun(t, "zpool list -H -o name"); out != "" {
			t.Errorf("the key test left a pool imported: %s", out)
		}
	})

	ri.say("fleet install tank --resume with the right key: install, reboot, verify")
	rebooted := ri.rebootWatch(ctx, "tank")
	step = time.Now()
	r = ri.run(ctx, nil, nil, append(args, "--disk-key", "tank/secret="+key, "--resume")...)
	t.Logf("resumed install through verify in %s", time.Since(step).Round(time.Second))
	if r.code != 0 {
		t.Fatalf("fleet install --resume: %s\nconsole:\n%s", r, ri.vm.Console())
	}
	if err := <-rebooted; err != nil {
		t.Fatalf("reboot: %v", err)
	}
	ri.checkInstalled(ctx, "tank", r, 2)

	ri.say("the installed system: hostid, the pool's import, the datasets, the key")
	if out := ri.vm.MustRun(t, homelab.TankZFSState); out != homelab.TankZFSWant {
		t.Errorf("the installed tank:\n%s\nwant:\n%s", out, homelab.TankZFSWant)
	}
	out := ri.vm.MustRun(t, `systemctl is-active fleet-agenix.service fleet-zfs.service
zpool get -H -o value health tank
journalctl -b -o cat -u fleet-zfs.service | grep -E '^(importing|Successfully)'`)
	if want := "active\nactive\nONLINE\nimporting ZFS pool \"tank\"...\nSuccessfully imported tank\n"; out != want {
		t.Errorf("fleet-zfs at boot:\n%s\nwant:\n%s", out, want)
	}
	// The key fleet-zfs loaded is the agenix secret's, decrypted at this
	// boot: the encrypted dataset is writable and readable.
	if got := ri.vm.MustRun(t, "echo tank-secret > /srv/secret/probe && cat /srv/secret/probe"); got != "tank-secret\n" {
		t.Errorf("/srv/secret: %q", got)
	}
	t.Logf("install with its refusals, reboot and checks: %s", time.Since(start).Round(time.Second))

	t.Run("reinstall_keeps_the_mirror", func(t *testing.T) {
		// Data on the pool, then the installer booted again over the
		// installed disks, and tank reinstalled with its data disks kept
		// (destroy = false): the system disk is erased, the pool imported
		// (never created), and every byte of the datasets stays.
		sums := `zpool get -H -o value guid tank; sha256sum /srv/data/blob /srv/secret/probe`
		before := ri.vm.MustRun(t, "head -c 8M /dev/urandom > /srv/data/blob && zpool sync tank && sync && "+sums)
		step := time.Now()
		if err := ri.vm.BootInstaller(ctx); err != nil {
			t.Fatal(err)
		}
		tank := filepath.Join(ri.fl.Dir, "hosts", "tank.nix")
		b, err := os.ReadFile(tank)
		if err != nil {
			t.Fatal(err)
		}
		kept := string(b)
		for _, d := range []string{`data1 = { type = "disk"; device = "/dev/vdb";`, `data2 = { type = "disk"; device = "/dev/vdc";`} {
			if !strings.Contains(kept, d) {
				t.Fatalf("hosts/tank.nix no longer has %q: update this test", d)
			}
			kept = strings.Replace(kept, d, d+" destroy = false;", 1)
		}
		os.WriteFile(tank, []byte(kept), 0o644)
		ri.say("fleet install tank again, the mirror's disks kept (destroy = false)")
		rebooted := ri.rebootWatch(ctx, "tank")
		r := ri.run(ctx, nil, nil, append(ri.args("tank"), "--disk-key", "tank/secret="+key)...)
		if r.code != 0 {
			t.Fatalf("reinstall: %s\nconsole:\n%s", r, ri.vm.Console())
		}
		if err := <-rebooted; err != nil {
			t.Fatalf("reboot: %v", err)
		}
		t.Logf("installer boot, reinstall, reboot: %s", time.Since(step).Round(time.Second))
		ri.checkInstalled(ctx, "tank", r, 2)
		if after := ri.vm.MustRun(t, sums); after != before {
			t.Errorf("the kept pool changed: before\n%s\nafter\n%s", before, after)
		}
		if out := ri.vm.MustRun(t, homelab.TankZFSState); out != homelab.TankZFSWant {
			t.Errorf("the reinstalled tank:\n%s\nwant:\n%s", out, homelab.TankZFSWant)
		}
	})
	t.Logf("TestInstallZFSOnRig took %s in all", time.Since(start).Round(time.Second))
}
