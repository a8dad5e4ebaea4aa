package provision

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// installerWithout restarts the fixture's installer (sshd) with a PATH on
// which the programs hidden do not exist: a directory of links to every
// other program of this machine's /usr/bin and /usr/sbin, as an installer
// image that lacks them would be.
func (f *pipelineFixture) installerWithout(t *testing.T, hidden ...string) {
	t.Helper()
	bin := t.TempDir()
	for _, dir := range []string{"/usr/local/bin", "/usr/sbin", "/usr/bin"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if slices.Contains(hidden, e.Name()) {
				continue
			}
			os.Symlink(filepath.Join(dir, e.Name()), filepath.Join(bin, e.Name())) // the first directory's wins
		}
	}
	f.srv = sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line}, Config: []string{"SetEnv PATH=" + bin}})
}

// newGitFixture is the pipeline fixture with its secrets input on a
// private git server (git-shell, the deploy key only), locked by rev and
// narHash.
func newGitFixture(t *testing.T) (*pipelineFixture, sshtest.Key, *sshtest.GitServer) {
	t.Helper()
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
	gs := sshtest.StartGitServer(t, deploy)
	f := newPipelineFixture(t)
	f.lockToGitServer(t, gs)
	return f, deploy, gs
}

// TestInstallerWithoutGit (#16 item 3): the secrets input is on a private
// git server, the operator's agent holds the deploy key, and the installer
// has no git (nixos-images' kexec installer). By default the input is
// fetched on this machine, checked against the lock and streamed in; the
// agent is never forwarded, and the summary says so. Asking the installer
// to fetch (--secrets-fetch installer) is refused in preflight by name,
// with the new root untouched.
func TestInstallerWithoutGit(t *testing.T) {
	f, deploy, gs := newGitFixture(t)
	f.installerWithout(t, "git")
	clone := filepath.Join(t.TempDir(), "secrets")
	nixtest.Run(t, "/", nil, "git", "clone", "-q", gs.Repo, clone)
	op := sshtest.StartAgent(t, deploy)

	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity, PhaseScan)
	o.Dial.HostKey.KnownHosts = []string{gs.WriteKnownHosts(t)}
	o.Forward = agentfwd.Options{Keys: []string{deploy.Fingerprint()}, Socket: op.Socket}
	o.Host.SecretsDir = clone

	explicit := o
	explicit.SecretsFetch = FetchInstaller
	_, err := Install(context.Background(), explicit)
	want := "preflight: the installer " + f.srv.Addr() + " has no git, and --secrets-fetch installer asks it to fetch the secrets input\nhint: leave --secrets-fetch out (fleet then fetches the input here and streams it in), or boot an installer with git (the NixOS ISO has it from 24.11 on)\nno changes made"
	if err == nil || strings.Replace(err.Error(), "["+f.srv.Host+"]:", f.srv.Host+":", 1) != want {
		t.Fatalf("--secrets-fetch installer without git:\ngot  %v\nwant %s", err, want)
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("the new root was touched: %v", ents)
	}

	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if sum.SecretsFetch != FetchLocal || sum.SecretsFetchWhy != "the installer has no git; no agent was forwarded" {
		t.Errorf("summary: secrets fetched by %q (%q)", sum.SecretsFetch, sum.SecretsFetchWhy)
	}
	if sum.ForwardPolicy != "" || sum.Forwarding != "" {
		t.Errorf("an agent was forwarded: %q, %q", sum.ForwardPolicy, sum.Forwarding)
	}
	staged := filepath.Join(f.root, "var/lib/fleet/inputs/secrets")
	in, _ := flake.ReadLock(filepath.Join(f.flakeDir, "flake.lock"))
	sin, _ := in.Input("secrets")
	if h, err := flake.NarHash(staged); err != nil || h != sin.Locked.NarHash {
		t.Errorf("staged secrets hash to %s (%v), the lock says %s", h, err, sin.Locked.NarHash)
	}
	if sum.Connections != 1 {
		t.Errorf("%d connections, want 1", sum.Connections)
	}
}

// TestInstallerLacksPrograms: an installer without tar and nixos-install
// is refused in preflight, each program named with what it is for, and
// nothing is touched.
func TestInstallerLacksPrograms(t *testing.T) {
	f := newPipelineFixture(t)
	f.installerWithout(t, "tar", "nixos-install")
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan)
	_, err := Install(context.Background(), o)
	var pe *PhaseError
	want := "preflight: the installer [" + f.srv.Host + "]:" + strings.TrimPrefix(f.srv.Addr(), f.srv.Host+":") + " lacks tar (to unpack the flake's files), nixos-install (to install the system)\nhint: boot a NixOS installer image (the minimal ISO, or nixos-images' kexec installer), whose PATH has them\nno changes made"
	if !errors.As(err, &pe) || pe.Changed || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("the new root was touched: %v", ents)
	}
}

// TestLUKSLayoutWithoutCryptsetup (#16 item 3): a layout with a LUKS
// container, on an installer without cryptsetup (the kexec installer), is
// refused in preflight naming the tool and the node that needs it; the
// disk (a loop device) is not written to.
func TestLUKSLayoutWithoutCryptsetup(t *testing.T) {
	testenv.Root(t, "a loop device as the layout's disk")
	testenv.Programs(t, "losetup")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	f := newPipelineFixture(t)
	f.installerWithout(t, "cryptsetup")
	spec := *f.spec
	spec.Disko = json.RawMessage(`{"disk": {"main": {"type": "disk", "device": "` + dev + `", "content": {"type": "gpt", "partitions": {
  "luks": {"size": "100%", "content": {"type": "luks", "name": "crypted", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}}`)
	o := f.options(t, PhasePreflight, PhaseDisko, PhaseStage)
	o.Spec = &spec
	key := filepath.Join(t.TempDir(), "disk.key")
	os.WriteFile(key, []byte("correct horse"), 0o600)
	o.DiskOptions = DiskOptions{KeyFiles: map[string]string{"crypted": key}, Yes: true}
	_, err = Install(context.Background(), o)
	want := "preflight: the installer lacks cryptsetup (from cryptsetup, for disk.main.content.partitions.luks.content): installer tool missing or too old: no changes made\nhint: add those packages to the installer image"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	b, _ := os.ReadFile(img)
	if i := slices.IndexFunc(b, func(c byte) bool { return c != 0 }); i >= 0 {
		t.Fatalf("the disk was written to (byte %d)", i)
	}
}
