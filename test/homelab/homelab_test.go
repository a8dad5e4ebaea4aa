package homelab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
)

// TestSetup: the instantiated example is consistent without a VM: the
// lock pins the served commit and its narHash, the flake points at the
// server, each host's declared secrets decrypt with its own host key and
// every secret with the operator's key, and the host files declare what
// Declared says (checked against the committed sources).
func TestSetup(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen")
	f := Setup(t)
	lock, err := flake.ReadLock(filepath.Join(f.Dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := lock.Input("secrets")
	if err != nil {
		t.Fatal(err)
	}
	if in.Locked.Rev != f.Rev || in.Locked.NarHash != f.NarHash {
		t.Fatalf("lock %s %s, served %s %s", in.Locked.Rev, in.Locked.NarHash, f.Rev, f.NarHash)
	}
	if head := strings.TrimSpace(nixtest.Git(t, f.SecretsDir, "rev-parse", "HEAD")); head != f.Rev {
		t.Fatalf("clone at %s, served %s", head, f.Rev)
	}
	nix, _ := os.ReadFile(filepath.Join(f.Dir, "flake.nix"))
	if strings.Contains(string(nix), placeholderURL) || !strings.Contains(string(nix), f.Git.GuestURL("secrets")) {
		t.Fatal("flake.nix does not point at the git server")
	}
	op, err := secrets.LoadIdentities([]string{f.Operator}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, plain := range f.Plain {
		got, err := secrets.DecryptFile(filepath.Join(f.SecretsDir, name+".age"), op)
		if err != nil || string(got) != plain {
			t.Fatalf("%s with the operator key: %v", name, err)
		}
	}
	for host, declared := range Declared {
		ids, err := secrets.LoadIdentities([]string{f.HostKeys[host].Path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(filepath.Join(Source(), "hosts", host+".nix"))
		for name := range declared {
			if !strings.Contains(string(src), name) {
				t.Errorf("hosts/%s.nix does not declare %s", host, name)
			}
			got, err := secrets.DecryptFile(filepath.Join(f.SecretsDir, name+".age"), ids)
			if err != nil || string(got) != f.Plain[name] {
				t.Errorf("%s cannot decrypt its %s: %v", host, name, err)
			}
		}
	}
}

// TestCommitSecrets: a file written into the secrets clone (an escrow)
// reaches the git server, and the flake is locked to that commit.
func TestCommitSecrets(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen")
	f := Setup(t)
	before := f.Rev
	p := filepath.Join(f.SecretsDir, "hosts/nas/host-key.age")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("escrow"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.CommitSecrets(t, "escrow nas")
	if f.Rev == before {
		t.Fatal("no new commit")
	}
	if got := nixtest.Git(t, f.Git.RepoPath("secrets"), "show", f.Rev+":hosts/nas/host-key.age"); got != "escrow" {
		t.Fatalf("the server has %q", got)
	}
	lock, err := flake.ReadLock(filepath.Join(f.Dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := lock.Input("secrets")
	if in.Locked.Rev != f.Rev || in.Locked.NarHash != f.NarHash {
		t.Fatalf("lock %s %s, want %s %s", in.Locked.Rev, in.Locked.NarHash, f.Rev, f.NarHash)
	}
	if !IsEscrow("hosts/nas/host-key.age") || IsEscrow("hosts/nas/smb.age") {
		t.Fatal("IsEscrow")
	}
}
