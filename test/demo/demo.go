package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/testenv"
)

// demo is what a scenario works with: fleet built from this checkout,
// the example fleet, the installer VM, and fleet's output.
type demo struct {
	t    testenv.TB
	repo string
	name string

	fleet string         // the fleet binary built from repo
	fl    *homelab.Fleet // the example fleet, set up
	env   []string       // fleet's environment: the operator's agent, a private nix store
	vm    *rig.VM

	summary string // fleet's stdout of the last run: its tables
}

// say tells what happens now.
func (d *demo) say(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// buildFleet builds fleet from the checkout, as a user would.
func (d *demo) buildFleet(ctx context.Context) error {
	d.say("build fleet from this checkout (go build ./cmd/fleet)")
	d.fleet = filepath.Join(d.t.TempDir(), "fleet")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", d.fleet, "./cmd/fleet")
	cmd.Dir = d.repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/fleet: %w", err)
	}
	return nil
}

// setUp makes the example fleet: keys, encrypted secrets, the private
// git server, the flake; and the operator's side: an ssh-agent holding
// the deploy key and a personal key (the installer may use only the
// first), and a private nix store for fleet's local evaluation.
func (d *demo) setUp() {
	d.say("set up the example fleet (examples/homelab): keys made now, its secrets encrypted by the secrets.nix of each place\n    they are kept (the flake itself; two repos served by a private git server on this machine's loopback: git-shell, deploy key only)")
	d.fl = homelab.Setup(d.t)
	fmt.Printf("    flake %s, secrets locked at rev %s\n", d.fl.Dir, d.fl.Rev[:12])
	d.env = d.fl.OperatorEnv(d.t)
}

// boot starts the installer VM.
func (d *demo) boot(what string, opts rig.Options) {
	d.say("boot the live installer VM (qemu under software emulation): %s", what)
	d.vm = rig.Boot(d.t, opts)
	fmt.Printf("    installer up: sshd on 127.0.0.1:%d, host key %s (pinned)\n", d.vm.Port, d.vm.Fingerprint())
}

// rebootWatch boots the installed disks when the guest reboots, as
// firmware would; the result arrives on the channel.
func (d *demo) rebootWatch(ctx context.Context, host string) <-chan error {
	done := make(chan error, 1)
	go func() {
		if err := d.vm.Wait(ctx); err != nil {
			done <- err
			return
		}
		done <- d.vm.Reboot(ctx, d.fl.HostPublicKey(host))
	}()
	return done
}

// fleetRun runs fleet with args: its log (stderr) live on the terminal,
// its stdout (the tables) kept for the end.
func (d *demo) fleetRun(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, d.fleet, args...)
	cmd.Env = d.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	err := cmd.Run()
	d.summary = out.String()
	if err != nil {
		fmt.Print(d.summary)
		return fmt.Errorf("fleet %s: %w", args[0], err)
	}
	return nil
}

// scanOverlay scans the installer's writable images from the host for the
// bytes of every private key of the example.
func (d *demo) scanOverlay(ctx context.Context) error {
	d.say("scan the installer's writable layer (its overlay image) from the host for the bytes of every private key")
	keys, err := d.fl.PrivateKeys()
	if err != nil {
		return err
	}
	found, err := d.vm.Scan(ctx, keys...)
	if err != nil {
		return err
	}
	if len(found) > 0 {
		var l []string
		for _, f := range found {
			l = append(l, f.String())
		}
		return fmt.Errorf("key material on the installer media: %s", strings.Join(l, ", "))
	}
	fmt.Println("    nothing found")
	return nil
}

// done ends a scenario with fleet's phase table and first-boot table.
func (d *demo) done(took time.Duration) {
	d.say("demo %s done in %s; fleet's summary:", d.name, took.Round(time.Second))
	fmt.Println()
	fmt.Print(d.summary)
}
