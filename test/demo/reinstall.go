package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/installers"
)

// reinstallHost is the host the story reinstalls: the example's NAS. The
// one place that names it (another architecture's rig may rewrite the
// example's platform, not this).
const reinstallHost = "nas"

// reinstall is disaster recovery (issue 18): nas installed onto the NixOS
// ISO's profile, data written to its array, its host key escrowed for the
// operator; then its system disk dies: a blank disk in its place, the
// installer booted again (udev assembles the surviving array), and
// `fleet install nas --keep data1,data2 --host-identity-age ...` brings
// the same host back: every secret verified at first boot, the same host
// key, the data's sha256 and the array's UUID unchanged, no key left on
// the installer. Before that, what must be refused is, each by its exact
// error with nothing changed: a --keep name the layout lacks, a kept
// disk that is blank, a kept disk that is another's, and the escrow of
// another host.
func reinstall(ctx context.Context, d *demo) error {
	start := time.Now()
	host := reinstallHost
	if err := d.buildFleet(ctx); err != nil {
		return err
	}
	d.setUp()
	iso := installers.ISO
	d.env = append(d.env, iso.Env()...)
	d.boot("the NixOS ISO's profile (log in as nixos with a password, sudo; udev assembles md arrays), x86_64, 3 blank disks (2 GiB, 512 MiB, 512 MiB)",
		iso.BootOptions([]int64{2 << 30, 512 << 20, 512 << 20}))
	target := d.vm.Target()
	hostFP := ssh.FingerprintSHA256(d.fl.HostPublicKey(host))

	// 1. The first install.
	rebooted := d.rebootWatch(ctx, host)
	d.say("fleet install %s --target %s --env-password ...", host, target)
	if err := d.fleetRun(ctx, iso.Args(d.fl, d.vm, target, host)...); err != nil {
		return err
	}
	if err := <-rebooted; err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	if err := d.verified(host); err != nil {
		return fmt.Errorf("the first install: %w", err)
	}

	// 2. Data on the array.
	d.say("write 32 MiB to /srv/data on the installed %s; record its sha256, the array's UUID and the host key", host)
	before, err := d.vm.Run(ctx, "(mountpoint -q /srv/data || mount /dev/md/data /srv/data) && dd if=/dev/urandom of=/srv/data/file bs=1M count=32 status=none && sync && "+recoveryFacts)
	if err != nil {
		return err
	}
	fmt.Print(indent4(before))

	// 3. The host's identity escrowed for the operator, committed, locked.
	escrow := filepath.ToSlash(filepath.Join("hosts", host, "host-key.age"))
	// The rules of the repository that holds nas's .age files (the input
	// secrets): its escrow goes beside them.
	rules := filepath.Join(d.fl.SecretsDirFor(host), "secrets.nix")
	installed := fmt.Sprintf("root@127.0.0.1:%d", d.vm.Port)
	d.say("fleet keys escrow %s --target %s --host-key %s: the host's key, encrypted to the operator only, into the repository holding its secrets; commit, push, lock", host, installed, hostFP)
	if err := d.fleetRun(ctx, "keys", "escrow", host, "--target", installed, "--host-key", hostFP, "--ssh-config", "none",
		"--ssh-identity", d.fl.Admin.Path, "--rules", rules); err != nil {
		return err
	}
	// tank's too (its .age files are in the same repository): the wrong
	// escrow, for a refusal below.
	if err := d.fleetRun(ctx, "keys", "escrow", "tank", "--from", d.fl.HostKeys["tank"].Path, "--rules", rules); err != nil {
		return err
	}
	d.fl.CommitSecrets(d.t, host, "escrow nas and tank")
	fmt.Printf("    secrets locked at rev %s\n", d.fl.Rev[:12])

	// 4. The system disk dies.
	d.say("power off; a blank disk replaces the system disk (vda); boot the installer again")
	d.vm.Shutdown(ctx)
	if err := d.vm.ReplaceDisk(0); err != nil {
		return err
	}
	if err := d.vm.BootInstaller(ctx); err != nil {
		return err
	}
	md, err := d.vm.Run(ctx, "cat", "/proc/mdstat")
	if err != nil {
		return err
	}
	if !regexp.MustCompile(`(?m)^md[0-9]+ : active (\(auto-read-only\) )?raid1 `).MatchString(md) {
		return fmt.Errorf("udev did not assemble the surviving array:\n%s", md)
	}
	fmt.Printf("    udev assembled the surviving array:\n%s", indent4(md))

	// 5. What must be refused, with nothing changed.
	args := homelab.WithoutFlag(iso.Args(d.fl, d.vm, target, host), "--host-identity")
	args = append(args, "--host-identity-age", escrow, "--operator-identity", d.fl.Operator)
	disks, err := d.diskState(ctx)
	if err != nil {
		return err
	}
	refusals := []struct {
		what  string
		extra []string
		code  int
		want  []string // stderr lines, exactly
	}{
		{"a --keep name the layout lacks", []string{"--keep", "data1,data3"}, 2, []string{
			`error: host nas: --keep data1,data3: the layout has no disk "data3" (its disks: data1, data2, main): unknown disk: no changes made`,
			`hint: name the layout's disks, as in --keep data1,data2,main`}},
		{"a kept disk that is blank (the new system disk)", []string{"--keep", "main,data1,data2"}, 1, []string{
			`error: disko: keep disk "main" (/dev/vda): disk.main.content: /dev/vda is blank: blkid finds no partition table, the layout wants gpt: existing layout does not match: no changes made`}},
		{"a kept disk that is another's (the data disks swapped)", []string{"--keep", "data1,data2", "--device", "data1=/dev/vdc", "--device", "data2=/dev/vdb"}, 1, []string{
			`error: disko: keep disk "data1" (/dev/vdc): disk.data1.content.partitions.raid: partition 1 of /dev/vdc has name "disk-data2-raid", want "disk-data1-raid": existing layout does not match: no changes made`}},
		{"the escrow of another host", []string{"--keep", "data1,data2", "--host-identity-age", "hosts/tank/host-key.age"}, 1, []string{
			`error: the escrowed identity hosts/tank/host-key.age (ssh-ed25519 ` + ssh.FingerprintSHA256(d.fl.HostPublicKey("tank")) + `) is not the recipient of nas's secrets:`}},
	}
	for _, r := range refusals {
		d.say("refused: %s (fleet install %s ... %s)", r.what, host, strings.Join(r.extra, " "))
		code, stderr, err := d.fleetErr(ctx, append(slices.Clone(args), r.extra...)...)
		if err != nil {
			return err
		}
		lines := strings.Split(stderr, "\n")
		for _, w := range r.want {
			if !slices.Contains(lines, w) {
				return fmt.Errorf("%s: fleet's stderr lacks the line\n%s\nit said:\n%s", r.what, w, stderr)
			}
		}
		if code != r.code {
			return fmt.Errorf("%s: fleet exited %d, want %d", r.what, code, r.code)
		}
		now, err := d.diskState(ctx)
		if err != nil {
			return err
		}
		if now != disks {
			return fmt.Errorf("%s: the disks changed:\n%s\nwas:\n%s", r.what, now, disks)
		}
		fmt.Println("    refused; the disks are as they were (vda blank, the data disks' tables and superblocks unchanged, the array running)")
	}

	// 6. The reinstall.
	rebooted = d.rebootWatch(ctx, host)
	d.say("fleet install %s --target %s --keep data1,data2 --host-identity-age %s --operator-identity OPERATOR.age ...", host, target, escrow)
	if err := d.fleetRun(ctx, append(args, "--keep", "data1,data2")...); err != nil {
		return err
	}
	if err := <-rebooted; err != nil {
		return fmt.Errorf("boot the reinstalled machine: %w", err)
	}
	if err := d.verified(host); err != nil {
		return fmt.Errorf("the reinstall: %w", err)
	}
	for _, want := range []string{"host identity: restored from " + escrow + " (escrowed), ssh-ed25519 " + hostFP, "installed host key: " + hostFP} {
		if !strings.Contains(d.summary, want) {
			return fmt.Errorf("the reinstall's summary lacks %q", want)
		}
	}
	after, err := d.vm.Run(ctx, recoveryFacts)
	if err != nil {
		return err
	}
	d.say("the reinstalled %s: the data's sha256, the array's UUID and the host key, before and after", host)
	fmt.Print(indent4(after))
	if after != before {
		return fmt.Errorf("the reinstalled host differs:\n%s\nbefore:\n%s", after, before)
	}
	if err := d.scanOverlay(ctx); err != nil {
		return err
	}
	d.done(time.Since(start))
	return nil
}

// recoveryFacts prints what must survive a reinstall: the data's sha256,
// the array's UUID, the host key's fingerprint. The rig's stand-in system
// has no NixOS fileSystems to mount the array at boot, so it is mounted
// here (findmnt then shows /srv/data is the array's xfs, not the root's
// directory).
const recoveryFacts = `(mountpoint -q /srv/data || mount /dev/md/data /srv/data) && findmnt -n -o FSTYPE /srv/data && cd /srv/data && sha256sum file && mdadm --detail --export /dev/md/data | grep '^MD_UUID=' && ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f1,2`

// verified checks the last run's summary: every phase done and every
// secret host declares verified at first boot.
func (d *demo) verified(host string) error {
	for _, ph := range []string{"preflight", "disko", "stage", "identity", "install", "scan", "reboot", "verify"} {
		if !regexp.MustCompile(`(?m)^` + ph + ` +done `).MatchString(d.summary) {
			return fmt.Errorf("phase %s not done:\n%s", ph, d.summary)
		}
	}
	if problems := installers.Verified(d.summary, host); len(problems) > 0 {
		return fmt.Errorf("%s:\n%s", strings.Join(problems, "; "), d.summary)
	}
	return nil
}

// fleetErr runs fleet expecting it to fail: its stderr live on the
// terminal and returned, with its exit code.
func (d *demo) fleetErr(ctx context.Context, args ...string) (int, string, error) {
	cmd := exec.CommandContext(ctx, d.fleet, args...)
	cmd.Env = d.env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, io.MultiWriter(&stderr, os.Stderr)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0, stderr.String(), fmt.Errorf("fleet %s should have failed: %v", args[0], err)
	}
	return ee.ExitCode(), stderr.String(), nil
}

// diskState is what the disks hold, for "nothing changed": whether the
// new system disk's image is still untouched (read on the host), the data
// disks' first MiB (tables, md superblocks) and the arrays running.
func (d *demo) diskState(ctx context.Context) (string, error) {
	blank, err := untouched(d.vm.Disks[0])
	if err != nil {
		return "", err
	}
	out, err := d.vm.Run(ctx, "head -c 1M /dev/vdb | sha256sum; head -c 1M /dev/vdc | sha256sum; grep ' : active' /proc/mdstat")
	return fmt.Sprintf("vda untouched: %v\n%s", blank, out), err
}

// untouched reports whether nothing was ever written to a sparse disk
// image: it has no data extent, or only zeros.
func untouched(img string) (bool, error) {
	f, err := os.Open(img)
	if err != nil {
		return false, err
	}
	defer f.Close()
	const seekData = 3 // SEEK_DATA: the next data extent; ENXIO when there is none
	if _, err := f.Seek(0, seekData); errors.Is(err, syscall.ENXIO) {
		return true, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if !bytes.Equal(buf[:n], zero[:n]) {
			return false, nil
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

func indent4(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
