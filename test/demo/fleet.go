package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/rig"
)

// fleetHosts are the example's hosts as the fleet scenario installs them:
// the disks each installer VM gets, and what each shows.
var fleetHosts = []struct {
	name  string
	disks []int64
	what  string
}{
	{"nas", []int64{2 << 30, 512 << 20, 512 << 20}, "3 blank disks; its .age files in the input secrets, fetched by the installer through the scoped agent"},
	{"router", []int64{2 << 30}, "1 blank disk; its .age files in an input named agenix-secrets"},
	{"vault", []int64{2 << 30}, "1 blank disk with LUKS (its key on cryptsetup's stdin only); its .age files in the flake itself: nothing fetched, no agent"},
}

// fleetDemo installs the example's three hosts, each onto an installer VM
// of its own, and leaves the installed machines running. Then one
// `fleet verify --all` checks the three at once: each reached by an
// ssh_config alias, its host key pinned in known_hosts, every secret
// decrypted here with the operator's age key and compared by sha256 with
// the host's copy on its ramfs. Then one secret on vault is changed on
// the machine, and verify --all fails naming vault and that secret.
func fleetDemo(ctx context.Context, d *demo) error {
	start := time.Now()
	if err := d.buildFleet(ctx); err != nil {
		return err
	}
	d.setUp()
	vms := map[string]*rig.VM{}
	var installs []string
	for _, h := range fleetHosts {
		d.boot(h.name+": "+h.what, rig.Options{Disks: h.disks})
		rebooted := d.rebootWatch(ctx, h.name)
		args := d.fl.InstallArgs(h.name, d.vm.Target(), d.vm.Identity, d.vm.Fingerprint())
		if h.name == "vault" {
			key := filepath.Join(d.t.TempDir(), "vault.luks")
			if err := os.WriteFile(key, []byte("demo luks passphrase "+strconv.FormatInt(time.Now().UnixNano(), 36)), 0o600); err != nil {
				return err
			}
			args = append(args, "--disk-key", "crypted="+key)
		}
		d.say("fleet install %s --flake %s --target %s --host-key %s ...", h.name, d.fl.Dir, d.vm.Target(), d.vm.Fingerprint())
		if err := d.fleetRun(ctx, args...); err != nil {
			return err
		}
		if err := <-rebooted; err != nil {
			return fmt.Errorf("boot the installed %s: %w", h.name, err)
		}
		if err := d.scanOverlay(ctx); err != nil {
			return err
		}
		installs = append(installs, fmt.Sprintf("%s (%s)", h.name, strings.TrimSpace(lastLine(d.summary, "installed host key:"))))
		vms[h.name] = d.vm
	}

	// How the operator reaches the fleet: an ssh_config alias per host,
	// and known_hosts pinning each installed host key.
	dir := d.t.TempDir()
	var cfg, known []string
	for _, h := range fleetHosts {
		vm := vms[h.name]
		cfg = append(cfg, "Host "+h.name, "  HostName 127.0.0.1", "  Port "+strconv.Itoa(vm.Port), "  User root",
			"  IdentityFile "+vm.Identity, "  IdentitiesOnly yes", "")
		known = append(known, fmt.Sprintf("[127.0.0.1]:%d %s", vm.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(d.fl.HostPublicKey(h.name))))))
	}
	sshConfig, knownHosts := filepath.Join(dir, "ssh_config"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(sshConfig, []byte(strings.Join(cfg, "\n")), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(knownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	// The hosts this scenario installed, by name: the flake has others
	// (tank, the ZFS NAS, has a scenario of its own).
	verify := []string{"verify", "--all", "--flake", d.fl.Dir, "--ssh-config", sshConfig, "--known-hosts", knownHosts,
		"--host-identity", d.fl.Operator}
	for _, h := range fleetHosts {
		verify = append(verify, h.name)
	}
	for _, name := range homelab.Repos {
		verify = append(verify, "--secrets-dir", d.fl.Repos[name].Dir)
	}
	d.say("installed: %s\n    fleet verify --all nas router vault --flake %s --ssh-config %s --known-hosts %s --host-identity OPERATOR.age ...", strings.Join(installs, ", "), d.fl.Dir, sshConfig, knownHosts)
	if err := d.fleetRun(ctx, verify...); err != nil {
		return err
	}
	fmt.Print(d.summary)
	table := d.summary

	// One secret changed on one machine: verify --all fails, naming both.
	const secret = "anthropic-api-key"
	d.say("change %s on vault, then fleet verify --all again: exit 1, naming vault and the secret", secret)
	vault := vms["vault"]
	cmd := exec.CommandContext(ctx, "ssh", append(vault.LoginArgs("root"), "--",
		"chmod u+w /run/agenix/"+secret+" && printf tampered > /run/agenix/"+secret+" && chmod 0440 /run/agenix/"+secret)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("change %s on vault: %w: %s", secret, err, out)
	}
	err := d.fleetRun(ctx, verify...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return fmt.Errorf("fleet verify --all passed with %s changed on vault", secret)
	case !errors.As(err, &ee) || ee.ExitCode() != 1:
		return err
	}
	// (fleetRun printed the table: the command failed, as it must.)
	if !bytes.Contains([]byte(d.summary), []byte(secret+": content differs")) {
		return fmt.Errorf("the table does not name %s on vault:\n%s", secret, d.summary)
	}
	d.summary = table + "\nwith " + secret + " changed on vault:\n\n" + d.summary
	d.done(time.Since(start))
	return nil
}

// lastLine is the last line of s that starts with prefix, "" if none.
func lastLine(s, prefix string) string {
	var found string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			found = strings.TrimPrefix(l, prefix)
		}
	}
	return found
}
