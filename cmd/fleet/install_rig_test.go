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
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/homelab"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
)

// rigInstall is one example fleet (examples/homelab, set up by
// test/homelab) and one rig VM, and runs the real `fleet` command
// (testscript's copy of this binary on $PATH) against them.
type rigInstall struct {
	t     *testing.T
	fl    *homelab.Fleet
	vm    *rig.VM
	agent *sshtest.Agent
	env   []string
	// target is what fleet dials (the VM's port, or a proxy in front).
	target string
}

// newRigInstall sets up the example fleet and boots an x86_64 installer
// with blank disks of these sizes. The example's nas (aarch64-linux, the
// ARM NAS) is instantiated as x86_64-linux here (homelab.Platform): the
// x86 rig installs it cheaply; TestInstallAarch64OnRig installs it as it is.
func newRigInstall(t *testing.T, disks []int64) *rigInstall {
	return newRigInstallWith(t, rig.Options{Disks: disks})
}

// newRigInstallWith is newRigInstall on a VM of opts (the ZFS variant,
// say).
func newRigInstallWith(t *testing.T, opts rig.Options) *rigInstall {
	rig.Require(t)
	nixtest.Require(t, "git", "age", "nix")
	ri := &rigInstall{t: t}
	ri.say("the example fleet (examples/homelab): keys made now, the seed's secrets encrypted by the secrets.nix of each place\n    they are kept (the flake itself, two repos on a private git server on this machine's loopback: git-shell, deploy key only)")
	ri.fl = homelab.Setup(t, homelab.Platform("nas", homelab.RigSystem(rig.ArchX86_64)))
	ri.say("flake %s, secrets locked at rev %s", ri.fl.Dir, ri.fl.Rev[:12])
	// The operator's agent holds the deploy key and a personal key; only
	// the deploy key may be used by the installer.
	ri.agent = sshtest.StartAgent(t, ri.fl.Deploy, sshtest.NewKey(t, "ed25519", "", "operator-personal"))
	// The local `nix eval` of the host spec, in a private store (nix-bin
	// as root).
	st := nixtest.NewStore(t)
	ri.env = append(os.Environ(), "SSH_AUTH_SOCK="+ri.agent.Socket)
	for _, kv := range st.Env {
		if strings.HasPrefix(kv, "NIX_CONFIG=") {
			kv += "\nstore = " + st.Path
		}
		ri.env = append(ri.env, kv)
	}
	ri.say("boot the live installer VM (qemu, x86_64) with %d blank disks", len(opts.Disks))
	ri.vm = rig.Boot(t, opts)
	ri.target = ri.vm.Target()
	ri.say("installer up on 127.0.0.1:%d, host key %s (pinned)", ri.vm.Port, ri.vm.Fingerprint())
	return ri
}

func (ri *rigInstall) say(format string, args ...any) {
	ri.t.Helper()
	ri.t.Logf("==> "+format, args...)
}

// args are the flags every install of host shares (the clone of the
// repository its .age files are in, when they are not the flake's own).
func (ri *rigInstall) args(host string) []string {
	return ri.fl.InstallArgs(host, ri.target, ri.vm.Identity, ri.vm.Fingerprint())
}

// fleetRun is one finished `fleet` process.
type fleetRun struct {
	code           int
	stdout, stderr string
}

func (r fleetRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs fleet with args; watch, if set, sees each stderr line as it
// comes (the structured log) and may act on the process.
func (ri *rigInstall) run(ctx context.Context, env []string, watch func(line string, p *os.Process), args ...string) fleetRun {
	ri.t.Helper()
	cmd := exec.CommandContext(ctx, "fleet", args...)
	cmd.Env = append(append([]string{}, ri.env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		ri.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := pr.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				line := string(buf[:i+1])
				stderr.WriteString(line)
				if watch != nil {
					watch(line, cmd.Process)
				}
				buf = buf[i+1:]
			}
			if err != nil {
				stderr.Write(buf)
				return
			}
		}
	}()
	err := cmd.Wait()
	pw.Close()
	wg.Wait()
	r := fleetRun{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ri.t.Fatalf("fleet: %v", err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// rebootWatch boots the installed disks when the guest reboots, as
// firmware would; the result arrives on the channel.
func (ri *rigInstall) rebootWatch(ctx context.Context, host string) <-chan error {
	done := make(chan error, 1)
	go func() {
		if err := ri.vm.Wait(ctx); err != nil {
			done <- err
			return
		}
		done <- ri.vm.Reboot(ctx, ri.fl.HostPublicKey(host))
	}()
	return done
}

// checkInstalled checks a finished install of host: every phase done,
// one connection per boot, the verify table, the deploy key used through
// the forwarded agent when the host's .age files are in an input (and no
// agent when they are the flake's own), no plaintext in the output, and
// nothing with the keys' bytes on the installer's overlay.
func (ri *rigInstall) checkInstalled(ctx context.Context, host string, r fleetRun, connections int) {
	t := ri.t
	t.Helper()
	o := r.stdout
	declared := homelab.Declared[host]
	for name, path := range declared {
		row := `(?m)^` + regexp.QuoteMeta(name) + ` +` + regexp.QuoteMeta(path) + ` +04[04]0 +root +root +ramfs +match +ok$`
		if !regexp.MustCompile(row).MatchString(o) {
			t.Errorf("verify table lacks an ok row for %s at %s", name, path)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^[a-z-]+ +/\S+ +04[04]0 `).FindAllString(o, -1)); n != len(declared) {
		t.Errorf("verify table has %d secret rows, %s declares %d", n, host, len(declared))
	}
	hostPub := ri.fl.HostPublicKey(host)
	for _, want := range []string{fmt.Sprintf("ssh connections opened: %d", connections), "installed host key: " + ssh.FingerprintSHA256(hostPub)} {
		if !strings.Contains(o, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if used := strings.Contains(o, "the installer used key "+ri.fl.Deploy.Fingerprint()); used != (homelab.Inputs[host] != homelab.SelfInput) {
		t.Errorf("%s's .age files are in %s, and the deploy key was used through the agent: %v", host, homelab.Inputs[host], used)
	}
	if homelab.Inputs[host] == homelab.SelfInput && strings.Contains(o, "forwarded agent:") {
		t.Errorf("%s's .age files are the flake's own, and an agent was forwarded", host)
	}
	for _, ph := range []string{"preflight", "disko", "stage", "identity", "install", "scan", "reboot", "verify"} {
		if !regexp.MustCompile(`(?m)^` + ph + ` +(done|resumed)`).MatchString(o) {
			t.Errorf("phase %s not done", ph)
		}
	}
	for _, plain := range ri.fl.Plain {
		for _, line := range strings.Split(strings.TrimSpace(plain), "\n") {
			if strings.Contains(o+r.stderr, line) && len(line) > 12 {
				t.Fatalf("a secret's plaintext appeared in fleet's output")
			}
		}
	}
	if t.Failed() {
		t.Logf("%s", r)
	}
	ri.scanOverlay(ctx)
}

// scanOverlay scans the installer's writable image from the host for the
// bytes of every private key of the example.
func (ri *rigInstall) scanOverlay(ctx context.Context) {
	ri.t.Helper()
	ri.say("scan the installer's overlay image from the host for the keys' bytes")
	var keys [][]byte
	for _, p := range []string{ri.fl.Deploy.Path, ri.fl.Operator} {
		b, _ := os.ReadFile(p)
		keys = append(keys, b)
	}
	for _, k := range ri.fl.HostKeys {
		b, _ := os.ReadFile(k.Path)
		keys = append(keys, b)
	}
	findings, err := ri.vm.Scan(ctx, keys...)
	if err != nil {
		ri.t.Fatal(err)
	}
	for _, f := range findings {
		ri.t.Errorf("key material on the installer media: %s", f)
	}
}

// disksBlank checks from the host that every target disk image is still
// all zeros.
func (ri *rigInstall) disksBlank(what string) {
	ri.t.Helper()
	buf := make([]byte, 1<<20)
	for _, d := range ri.vm.Disks {
		f, err := os.Open(d)
		if err != nil {
			ri.t.Fatal(err)
		}
		var off int64
		for {
			n, err := f.Read(buf)
			for i, b := range buf[:n] {
				if b != 0 {
					ri.t.Errorf("%s: %s was written to (byte %d is %#x)", what, filepath.Base(d), off+int64(i), b)
					f.Close()
					return
				}
			}
			off += int64(n)
			if err != nil {
				break
			}
		}
		f.Close()
	}
}

// TestInstallOnRig is the mission end to end, on the rig: the example
// fleet's `nas` on a live installer VM with three blank disks. fleet
// evaluates the host spec from the flake with the real nix, then runs
// every phase: preflight, disko (ESP and ext4 root on one disk, two disks
// in mdadm raid1 with xfs), stage (the installer fetches the secrets
// through the scoped agent), identity, install (the rig's stand-in
// nixos-install), scan, reboot and the first-boot verification. Then the
// installer's overlay is scanned from the host for key bytes.
// scripts/demo shows the same install (test/demo, scenario nas).
func TestInstallOnRig(t *testing.T) {
	ri := newRigInstall(t, []int64{2 << 30, 512 << 20, 512 << 20})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// The installer's sshd is reached through a relay that counts the
	// connections it answered: one per boot is the goal.
	relay := sshtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", ri.vm.Port))
	ri.target = "root@" + relay.Addr()
	rebooted := ri.rebootWatch(ctx, "nas")
	ri.say("fleet install nas --flake %s --target %s ...", ri.fl.Dir, ri.target)
	start := time.Now()
	r := ri.run(ctx, nil, nil, ri.args("nas")...)
	t.Logf("fleet install took %s", time.Since(start).Round(time.Second))
	if r.code != 0 {
		t.Fatalf("fleet install: %s\nconsole:\n%s", r, ri.vm.Console())
	}
	if err := <-rebooted; err != nil {
		t.Fatalf("reboot: %v", err)
	}
	if !strings.Contains(r.stdout, "the installer used key "+ri.fl.Deploy.Fingerprint()+" 1 time") {
		t.Errorf("the deploy key was not used exactly once:\n%s", r.stdout)
	}
	ri.checkInstalled(ctx, "nas", r, 2)
	if n := relay.SSHConnections(); n != 2 {
		t.Errorf("the installer's and the installed system's sshd answered %d connections, want 2 (one per boot)", n)
	}
	ri.say("done: installed, rebooted, every secret verified, nothing left on the installer")
}

// withFlag returns args with flag's value replaced by value.
func withFlag(args []string, flag, value string) []string {
	out := append([]string{}, args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// TestInstallRefusalsOnRig: on one live installer with a single blank
// 1 GiB disk, each way an install must refuse before touching anything.
// Each refusal is checked by its exact error, by its exit code, and from
// the host by the disk image still being all zeros; at the end the
// installer's overlay holds no key.
func TestInstallRefusalsOnRig(t *testing.T) {
	ri := newRigInstall(t, []int64{1 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	fl := ri.fl

	// A commit the operator made locally to router's repository and did
	// not push.
	routerRepo := fl.Repos[homelab.Inputs["router"]]
	nixtest.Git(t, routerRepo.Dir, "commit", "-q", "--allow-empty", "-m", "rotate, not pushed")
	unpushed := strings.TrimSpace(nixtest.Git(t, routerRepo.Dir, "rev-parse", "HEAD"))
	personalKey := sshtest.NewKey(t, "ed25519", "", "operator-personal")
	personal := sshtest.StartAgent(t, personalKey)
	stranger := sshtest.NewKey(t, "ed25519", "", "not-the-installer")

	cases := []struct {
		name  string
		args  []string
		env   []string
		setup func()
		want  []string // lines (regexps) stderr must have
	}{{
		name: "wrong installer host key",
		args: withFlag(ri.args("router"), "--host-key", stranger.Fingerprint()),
		want: []string{
			`^error: preflight: host key mismatch for ` + regexp.QuoteMeta(fmt.Sprintf("[127.0.0.1]:%d", ri.vm.Port)) + `: pinned ` + regexp.QuoteMeta(stranger.Fingerprint()) + `, host presented ` + regexp.QuoteMeta(ri.vm.Fingerprint()) + `$`,
			`^hint: check the fingerprint on the host's console`,
		},
	}, {
		name: "agent without the deploy key",
		args: ri.args("router"),
		env:  []string{"SSH_AUTH_SOCK=" + personal.Socket},
		want: []string{
			`^error: your ssh-agent \(SSH_AUTH_SOCK\) holds none of the keys --forward-key allows: ` + regexp.QuoteMeta(fl.Deploy.Fingerprint()) + `$`,
			`^hint: ssh-add the secrets repository's deploy key`,
		},
	}, {
		// The operator allows the wrong key: the installer offers it, and
		// the server refuses it.
		name: "agent whose keys the secrets server refuses",
		args: withFlag(ri.args("router"), "--forward-key", personalKey.Fingerprint()),
		env:  []string{"SSH_AUTH_SOCK=" + personal.Socket},
		want: []string{
			`^error: preflight: the installer cannot fetch ` + regexp.QuoteMeta(fl.Git.GuestURL(routerRepo.Input)) + ` through the forwarded agent: the server accepted none of the keys it offered \(.*Permission denied \(publickey\)\.?\)$`,
			`^hint: load the deploy key into your ssh-agent`,
		},
	}, {
		// No --forward-key and no IdentityFile for the secrets server:
		// nothing would be forwarded, so nothing is tried.
		name: "no key to forward",
		args: homelab.WithoutFlag(ri.args("router"), "--forward-key"),
		want: []string{
			`^error: no key allowed through the forwarded agent: neither --forward-key nor an IdentityFile for ` + regexp.QuoteMeta(rig.GuestHost) + ` in ssh_config names the key to forward$`,
			`^hint: pass --forward-key with the deploy key`,
		},
	}, {
		name: "identity that cannot decrypt a declared secret",
		args: withFlag(ri.args("nas"), "--host-identity", fl.HostKeys["router"].Path),
		want: []string{
			`^error: identity ` + regexp.QuoteMeta(fl.HostKeys["router"].Path) + ` cannot decrypt every secret nas declares:$`,
			`^  datadog-app-key \(datadog-app-key.age\): not encrypted to this identity`,
			`^hint: rekey them to its public key`,
		},
	}, {
		name: "disk too small",
		args: ri.args("vault"),
		want: []string{`^error: preflight: disk /dev/vda is too small: 1.0 GiB, and host vault's layout needs at least 1.2 GiB$`},
	}, {
		name:  "flake.lock rev the secrets repo does not have",
		args:  ri.args("router"),
		setup: func() { fl.WriteInputLock(t, routerRepo.Input, unpushed, routerRepo.NarHash) },
		want: []string{
			`^error: preflight: the secrets repository ` + regexp.QuoteMeta(fl.Git.GuestURL(routerRepo.Input)) + ` has no commit ` + unpushed + ` \(locked in flake.lock\)$`,
			`^hint: push it`,
		},
	}}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.setup != nil {
				c.setup()
				defer fl.WriteLock(t, fl.Rev, fl.NarHash)
			}
			r := ri.run(ctx, c.env, nil, c.args...)
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(`(?m)` + w).MatchString(r.stderr) {
					t.Errorf("stderr lacks %s", w)
				}
			}
			if strings.Contains(r.stderr, "preflight") && !strings.Contains(r.stderr, "no changes made") {
				t.Errorf("a preflight refusal does not say no changes were made")
			}
			t.Logf("%s", r)
			ri.disksBlank(c.name)
		})
	}

	// --eval-on installer, for an operator without Nix: the installer
	// evaluates the flake, with the secrets it fetched through the scoped
	// agent. A local nix that fails if called proves it was not used.
	t.Run("eval_on_installer", func(t *testing.T) {
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "nix"), []byte("#!/bin/sh\necho 'local nix called' >&2\nexit 99\n"), 0o755)
		env := []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
		// router's .age files are in the input agenix-secrets: the
		// installer fetches it before it evaluates, as --secrets-input says.
		r := ri.run(ctx, env, nil, append(ri.args("router"), "--eval-on", "installer", "--phases", "preflight", "--secrets-input", "agenix-secrets")...)
		t.Logf("%s", r)
		if r.code != 0 || !regexp.MustCompile(`(?m)^preflight +done`).MatchString(r.stdout) {
			t.Fatalf("want preflight done")
		}
		if !regexp.MustCompile(`evaluated the host spec on the installer .*secrets=2`).MatchString(r.stderr) {
			t.Errorf("no evaluation on the installer with router's 2 secrets in the log")
		}
		if !strings.Contains(r.stdout, "the installer used key "+fl.Deploy.Fingerprint()+" 1 time") {
			t.Errorf("the secrets were not fetched once through the scoped agent")
		}
		if out := ri.vm.MustRun(t, "ls /run/fleet"); strings.Contains(out, "eval") {
			t.Errorf("the evaluation's copies are left on the installer: %s", out)
		}
		// The spec evaluated there is nas's, whose data disks /dev/vdb and
		// /dev/vdc are, on this one-disk VM, the installer's own media
		// (read-only image, and the writable overlay): refused, untouched.
		r = ri.run(ctx, env, nil, append(ri.args("nas"), "--eval-on", "installer", "--phases", "preflight,disko")...)
		if r.code != 1 || !strings.Contains(r.stderr, "error: preflight: disk /dev/vdb is in use: mounted at /run/live/medium\nhint: ") {
			t.Errorf("nas evaluated on the installer: want the installer's media refused: %s", r)
		}
		if !strings.Contains(r.stderr, "no changes made") {
			t.Errorf("the refusal does not say no changes were made")
		}
		ri.disksBlank("eval on installer")
	})
	ri.scanOverlay(ctx)
}

// phaseStarted reports whether a log line is the start of phase.
func phaseStarted(line, phase string) bool {
	return strings.Contains(line, "started") && strings.Contains(line, "phase="+phase)
}

// TestInstallLUKSOnRig installs the example's `vault`: an ESP, an ext4
// root and a LUKS container (its key from --disk-key, given to cryptsetup
// on stdin) holding LVM with ext4; its .age files are the flake's own, so
// nothing is fetched and no agent forwarded. The SSH connection is cut in the middle
// of the stage phase; the run fails naming the phase, and --resume
// completes the install, reboots and verifies. The LUKS header is checked
// on the disk image from the host, and the key's bytes are looked for on
// the installer's overlay.
func TestInstallLUKSOnRig(t *testing.T) {
	ri := newRigInstall(t, []int64{2 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	proxy := sshtest.StartRelay(t, fmt.Sprintf("127.0.0.1:%d", ri.vm.Port))
	ri.target = fmt.Sprintf("root@127.0.0.1:%d", proxy.Port())
	diskKey := filepath.Join(t.TempDir(), "vault.luks")
	os.WriteFile(diskKey, []byte("correct horse battery staple "+ri.fl.Rev[:16]), 0o600)
	// Something to be in the middle of when the connection drops.
	blob := make([]byte, 24<<20)
	for i := range blob {
		blob[i] = byte(i*131 + i>>9)
	}
	os.WriteFile(filepath.Join(ri.fl.Dir, "blob.bin"), blob, 0o644)
	args := append(ri.args("vault"), "--disk-key", "crypted="+diskKey)

	ri.say("fleet install vault ... --disk-key crypted=FILE, the connection cut during stage")
	cut := 0
	r := ri.run(ctx, nil, func(line string, _ *os.Process) {
		if cut == 0 && phaseStarted(line, "stage") {
			time.Sleep(500 * time.Millisecond)
			cut = proxy.Cut()
		}
	}, args...)
	if cut == 0 {
		t.Fatalf("the stage phase never started: %s", r)
	}
	if r.code != 1 || !regexp.MustCompile(`(?m)^error: stage: `).MatchString(r.stderr) || !strings.Contains(r.stderr, "connection") {
		t.Fatalf("want a stage failure naming the lost connection: %s", r)
	}
	if strings.Contains(r.stderr, "no changes made") {
		t.Errorf("claims no changes after the disks were laid out: %s", r.stderr)
	}

	ri.say("fleet install vault ... --resume")
	rebooted := ri.rebootWatch(ctx, "vault")
	r = ri.run(ctx, nil, nil, append(args, "--resume")...)
	if r.code != 0 {
		t.Fatalf("resume: %s\nconsole:\n%s", r, ri.vm.Console())
	}
	if err := <-rebooted; err != nil {
		t.Fatalf("reboot: %v", err)
	}
	for _, ph := range []string{"preflight +done", "disko +resumed", "stage +done"} {
		if !regexp.MustCompile(`(?m)^` + ph).MatchString(r.stdout) {
			t.Errorf("resumed run: no %q row", ph)
		}
	}
	ri.checkInstalled(ctx, "vault", r, 2)

	// The third partition holds a LUKS header; the key is nowhere on the
	// installer media.
	out, err := exec.Command("partx", "-g", "-o", "START", "-n", "3", ri.vm.Disks[0]).Output()
	if err != nil {
		t.Fatalf("partx: %v", err)
	}
	var start int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &start); err != nil || start == 0 {
		t.Fatalf("no third partition: %q", out)
	}
	f, _ := os.Open(ri.vm.Disks[0])
	magic := make([]byte, 6)
	f.ReadAt(magic, start*512)
	f.Close()
	if string(magic) != "LUKS\xba\xbe" {
		t.Errorf("partition 3 starts with %q, not a LUKS header", magic)
	}
	key, _ := os.ReadFile(diskKey)
	findings, err := rig.ScanImage(ctx, ri.vm.Overlay, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("the disk key on the installer media: %s", f)
	}
}

// TestInstallInterruptedOnRig installs the example's `router` (one disk,
// ESP and ext4 root) the hard way: SIGINT in the middle of the disko
// phase (the real signal to the fleet process), which must report the
// disks' state and leave them re-runnable; then a re-run during which the
// installer VM is hard-reset in the install phase, which must fail naming
// the phase; then a plain re-run completes, reboots and verifies.
func TestInstallInterruptedOnRig(t *testing.T) {
	ri := newRigInstall(t, []int64{2 << 30})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := ri.args("router")

	ri.say("fleet install router ..., interrupted (SIGINT) during disko")
	sent := false
	r := ri.run(ctx, nil, func(line string, p *os.Process) {
		if !sent && strings.Contains(line, "step started") && strings.Contains(line, "action=mkfs") {
			sent = true
			p.Signal(os.Interrupt)
		}
	}, args...)
	if !sent {
		t.Fatalf("disko never formatted: %s", r)
	}
	if r.code != 1 || !regexp.MustCompile(`(?m)^error: disko: interrupted: `).MatchString(r.stderr) ||
		!strings.Contains(r.stderr, "the disks are partly laid out (the disko phase was interrupted) and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over") {
		t.Fatalf("want the interrupt reported with the disks' state: %s", r)
	}
	if out := ri.vm.MustRun(t, "grep -c ' /mnt' /proc/mounts || true"); strings.TrimSpace(out) != "0" {
		t.Errorf("the new root is still mounted after the interrupt: %s", out)
	}

	ri.say("fleet install router ... again, and the installer's power cut during the install phase")
	reset := make(chan error, 1)
	resetting := false
	r = ri.run(ctx, nil, func(line string, _ *os.Process) {
		if !resetting && phaseStarted(line, "install") {
			resetting = true
			go func() {
				time.Sleep(3 * time.Second)
				reset <- ri.vm.HardReset(ctx)
			}()
		}
	}, args...)
	if !resetting {
		t.Fatalf("the install phase never started: %s", r)
	}
	if err := <-reset; err != nil {
		t.Fatal(err)
	}
	if r.code != 1 || !regexp.MustCompile(`(?m)^error: install: `).MatchString(r.stderr) {
		t.Fatalf("want the install phase to fail when the installer lost power: %s", r)
	}
	t.Logf("after the power cut: %s", r.stderr)

	ri.say("fleet install router ... again: a plain re-run starts over and completes")
	rebooted := ri.rebootWatch(ctx, "router")
	r = ri.run(ctx, nil, nil, args...)
	if r.code != 0 {
		t.Fatalf("re-run: %s\nconsole:\n%s", r, ri.vm.Console())
	}
	if err := <-rebooted; err != nil {
		t.Fatalf("reboot: %v", err)
	}
	ri.checkInstalled(ctx, "router", r, 2)
}
