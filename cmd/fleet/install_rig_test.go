package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
)

// The seed's secrets, with test values.
var demoSecrets = map[string]string{
	"openai-key":          "sk-demo-openai-0000000000",
	"anthropic-api-key":   "sk-ant-demo-0000000000",
	"datadog-api-key":     "dd-api-demo-0000",
	"datadog-app-key":     "dd-app-demo-0000",
	"smb-credentials":     "username=nas\npassword=demo-smb-password\n",
	"protonvpn-wireguard": "[Interface]\nPrivateKey = demo-wireguard-key=\n",
}

const demoFlake = `{
  description = "homelab: the example fleet (evaluable without nixpkgs)";
  inputs.secrets = { url = "git+%s"; flake = false; };
  outputs = { self, secrets }: {
    nixosConfigurations.nas.config = {
      nixpkgs.hostPlatform.system = "x86_64-linux";
      networking.hostName = "nas";
      services.openssh.hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
      age.identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
      age.secrets = {
        openai-key.file = "${secrets}/openai-key.age";
        anthropic-api-key.file = "${secrets}/anthropic-api-key.age";
        datadog-api-key.file = "${secrets}/datadog-api-key.age";
        datadog-app-key.file = "${secrets}/datadog-app-key.age";
        smb-credentials = { file = "${secrets}/smb-credentials.age"; owner = "root"; mode = "0400"; };
        protonvpn-wireguard = { file = "${secrets}/protonvpn-wireguard.age"; path = "/etc/wireguard/wg0.conf"; };
      };
    };
  };
}
`

// demoDisko is the example NAS's layout. The root's label is the one the
// rig's firmware boots (root=LABEL=nixos); the ESP is formatted, not
// mounted: the stand-in nixos-install copies a Debian without a /boot.
const demoDisko = `{"disk": {
  "main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
    "ESP": {"size": "64M", "type": "EF00", "content": {"type": "filesystem", "format": "vfat"}},
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/", "extraArgs": ["-L", "nixos"]}}}}},
  "data1": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}},
  "data2": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}}},
 "mdadm": {"data": {"type": "mdadm", "level": 1, "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}`

// TestInstallOnRig is the mission end to end, on the rig: a live installer
// VM with three blank disks, a private git server holding the secrets repo,
// and `fleet install` doing every phase: preflight, disko (the NAS layout:
// ESP and ext4 root on one disk, two disks in mdadm raid1 with xfs), stage
// (the installer fetches the secrets through the scoped agent), identity,
// install (the rig's stand-in nixos-install), scan, reboot and the
// first-boot verification.
// Then the installer's overlay is scanned from the host for key bytes.
// scripts/demo runs it with FLEET_DEMO=1, which shows fleet's output.
func TestInstallOnRig(t *testing.T) {
	rig.Require(t)
	nixtest.Require(t, "git", "age")
	demo := os.Getenv("FLEET_DEMO") == "1"
	say := func(format string, args ...any) {
		if demo {
			fmt.Printf("\n==> "+format+"\n", args...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	say("keys: a deploy key for the secrets repo, the host's identity (also its SSH host key)")
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy@homelab")
	other := sshtest.NewKey(t, "ed25519", "", "operator-personal")
	host := sshtest.NewKey(t, "ed25519", "", "root@nas")

	say("the private secrets repo on a git server on this machine's loopback (git-shell, deploy key only)")
	gs := rig.StartGitServer(t, deploy.Line)
	files := map[string]string{"secrets.nix": "let nas = \"" + host.Line + "\"; in {\n"}
	for name, plain := range demoSecrets {
		ct, err := secrets.Encrypt([]byte(plain), []string{host.Line}, false)
		if err != nil {
			t.Fatal(err)
		}
		files[name+".age"] = string(ct)
		files["secrets.nix"] += fmt.Sprintf("  %q.publicKeys = [ nas ];\n", name+".age")
	}
	files["secrets.nix"] += "}\n"
	rev := gs.AddRepo(t, "secrets", files)
	clone := filepath.Join(t.TempDir(), "secrets")
	nixtest.Run(t, "/", nil, "git", "clone", "-q", gs.RepoPath("secrets"), clone)
	narHash, err := flake.NarHash(clone)
	if err != nil {
		t.Fatal(err)
	}

	say("the homelab flake, locked to secrets rev %s", rev[:12])
	url := gs.GuestURL("secrets")
	fl := t.TempDir()
	os.WriteFile(filepath.Join(fl, "flake.nix"), []byte(fmt.Sprintf(demoFlake, url)), 0o644)
	os.WriteFile(filepath.Join(fl, "flake.lock"), []byte(`{"nodes": {"root": {"inputs": {"secrets": "secrets"}},
 "secrets": {"flake": false, "locked": {"type": "git", "url": "`+url+`", "rev": "`+rev+`", "narHash": "`+narHash+`"},
  "original": {"type": "git", "url": "`+url+`"}}}, "root": "root", "version": 7}`), 0o644)
	spec := `{"name": "nas", "system": "x86_64-linux", "hostName": "nas", "secrets": {`
	var entries []string
	for name := range demoSecrets {
		e := fmt.Sprintf(`%q: {"file": "%s.age"`, name, name)
		if name == "protonvpn-wireguard" {
			e += `, "path": "/etc/wireguard/wg0.conf"`
		}
		entries = append(entries, e+"}")
	}
	spec += strings.Join(entries, ", ") + `}, "identityPaths": ["/etc/ssh/ssh_host_ed25519_key"], "hostKeys": ["/etc/ssh/ssh_host_ed25519_key"],
 "disko": ` + demoDisko + `}`
	os.WriteFile(filepath.Join(fl, "nas.json"), []byte(spec), 0o644)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(knownHosts, []byte(gs.GuestKnownHostsLine()+"\n"), 0o600)

	say("boot the live installer VM (qemu, TCG) with three blank disks")
	vm := rig.Boot(t, rig.Options{Disks: []int64{2 << 30, 512 << 20, 512 << 20}})
	say("installer up on 127.0.0.1:%d, host key %s (pinned)", vm.Port, vm.Fingerprint())

	// The operator's agent holds the deploy key and a personal key; only
	// the deploy key may be used by the installer.
	agent := sshtest.StartAgent(t, deploy, other)
	t.Setenv("SSH_AUTH_SOCK", agent.Socket)
	hostPub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(host.Line))
	if err != nil {
		t.Fatal(err)
	}
	// The installed system comes up as firmware would boot it: when fleet
	// reboots the guest, qemu ends and the rig boots the installed disk.
	rebooted := make(chan error, 1)
	go func() {
		if err := vm.Wait(ctx); err != nil {
			rebooted <- err
			return
		}
		rebooted <- vm.Reboot(ctx, hostPub)
	}()

	say("fleet install nas --target %s ...", vm.Target())
	var stdout, stderr bytes.Buffer
	var out, errw io.Writer = &stdout, &stderr
	if demo {
		out, errw = io.MultiWriter(&stdout, os.Stdout), io.MultiWriter(&stderr, os.Stdout)
	}
	start := time.Now()
	code := run(ctx, []string{"install", "nas", "--flake", fl, "--host-spec", filepath.Join(fl, "nas.json"),
		"--target", vm.Target(), "-i", vm.Identity, "--host-key", vm.Fingerprint(), "--ssh-config", "none",
		"--known-hosts", knownHosts, "--host-identity", host.Path, "--secrets-dir", gs.RepoPath("secrets"),
		"--forward-key", deploy.Fingerprint(), "--yes"},
		strings.NewReader(""), out, errw)
	t.Logf("fleet install took %s", time.Since(start).Round(time.Second))
	if code != 0 {
		t.Fatalf("fleet install exited %d\nstdout:\n%s\nstderr:\n%s\nconsole:\n%s", code, stdout.String(), stderr.String(), vm.Console())
	}
	if err := <-rebooted; err != nil {
		t.Fatalf("reboot: %v", err)
	}
	o := stdout.String()
	for name := range demoSecrets {
		path := "/run/agenix/" + name
		if name == "protonvpn-wireguard" {
			path = "/etc/wireguard/wg0.conf"
		}
		if !strings.Contains(o, name+"  ") || !strings.Contains(o, path) {
			t.Errorf("verify table lacks %s at %s", name, path)
		}
	}
	for _, want := range []string{"verify", "ssh connections opened: 2", "the installer used key " + deploy.Fingerprint() + " 1 time", "installed host key: " + ssh.FingerprintSHA256(hostPub)} {
		if !strings.Contains(o, want) {
			t.Errorf("summary lacks %q:\n%s", want, o)
		}
	}
	if !regexp.MustCompile(`(?m)^disko +done`).MatchString(o) {
		t.Errorf("the disko phase did not run:\n%s", o)
	}
	if strings.Contains(o, "differs") || strings.Contains(o, "missing") {
		t.Errorf("verification problems:\n%s", o)
	}
	for _, plain := range demoSecrets {
		if strings.Contains(o+stderr.String(), strings.TrimSpace(plain)) {
			t.Fatal("a secret's plaintext appeared in fleet's output")
		}
	}

	say("scan the installer's overlay image from the host for the keys' bytes")
	hostPriv, _ := os.ReadFile(host.Path)
	deployPriv, _ := os.ReadFile(deploy.Path)
	findings, err := rig.ScanImage(ctx, vm.Overlay, hostPriv, deployPriv)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("key material on the installer media: %s", f)
	}
	say("done: installed, rebooted, every secret verified, nothing left on the installer")
}
