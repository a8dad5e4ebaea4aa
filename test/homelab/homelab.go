// Package homelab sets up the example fleet in examples/homelab for the
// rig: it makes the keys (the operator's age identity, the deploy key of
// the secrets repository, each host's SSH host key), encrypts demo values
// of the seed's secrets with fleet's own secrets package by the rules of
// examples/homelab/secrets/secrets.nix, serves that repository from a
// private git server on the loopback, and instantiates the flake: a copy
// whose secrets input points at the server (as the VM reaches it) and
// whose flake.lock pins the commit by rev and narHash.
//
// Nothing private is committed: every key is made here, in the test's
// temporary directories, and the plaintexts are random for each run.
package homelab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// Hosts are the example's hosts.
var Hosts = []string{"nas", "router", "vault"}

// placeholderURL is the secrets input's URL in the committed flake.nix.
const placeholderURL = "git+ssh://git@secrets.homelab.invalid/secrets.git"

// Fleet is the instantiated example.
type Fleet struct {
	// Dir is the flake (a copy of examples/homelab with the secrets URL
	// and flake.lock filled in); its secrets/ is the rules' source.
	Dir string
	// SecretsDir is a local clone of the secrets repository, at Rev.
	SecretsDir string
	Git        *rig.GitServer
	Rev        string
	NarHash    string
	// KnownHosts pins the git server's host key under the address the VM
	// uses (a file).
	KnownHosts string
	// Deploy is the deploy key: the only key the git server accepts.
	Deploy sshtest.Key
	// Operator is the operator's age identity file (AGE-SECRET-KEY-1...).
	Operator string
	// HostKeys are each host's SSH host key, which is also its age identity.
	HostKeys map[string]sshtest.Key
	// Plain is each secret's plaintext (file name without .age -> value).
	Plain map[string]string
}

// Source is the committed example's directory.
func Source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "homelab")
}

// Setup instantiates the example fleet for t (see the package doc).
func Setup(t testenv.TB) *Fleet {
	t.Helper()
	nixtest.Require(t, "git")
	f := &Fleet{Dir: filepath.Join(t.TempDir(), "homelab"), HostKeys: map[string]sshtest.Key{}, Plain: map[string]string{}}
	if err := copyTree(Source(), f.Dir); err != nil {
		t.Fatal(err)
	}

	// Keys, made on the spot.
	f.Deploy = sshtest.NewKey(t, "ed25519", "", "deploy@homelab")
	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f.Operator = filepath.Join(t.TempDir(), "operator.age")
	if err := os.WriteFile(f.Operator, []byte(op.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keysNix := "{\n  operator = \"" + op.Recipient().String() + "\";\n"
	for _, h := range Hosts {
		k := sshtest.NewKey(t, "ed25519", "", "root@"+h)
		f.HostKeys[h] = k
		keysNix += fmt.Sprintf("  %s = %q;\n", h, strings.TrimSpace(k.Line))
	}
	keysNix += "}\n"
	secretsSrc := filepath.Join(f.Dir, "secrets")
	if err := os.WriteFile(filepath.Join(secretsSrc, "keys.nix"), []byte(keysNix), 0o644); err != nil {
		t.Fatal(err)
	}

	// The secrets, encrypted by the rules with fleet's secrets package.
	rules, err := secrets.LoadRules(context.Background(), filepath.Join(secretsSrc, "secrets.nix"), "")
	if err != nil {
		t.Fatalf("example secrets.nix: %v", err)
	}
	files := map[string]string{}
	for _, name := range []string{"secrets.nix", "keys.nix"} {
		b, err := os.ReadFile(filepath.Join(secretsSrc, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for _, r := range rules.Entries {
		if IsEscrow(r.File) {
			continue // written by fleet keys escrow, once a host runs
		}
		name := strings.TrimSuffix(r.File, ".age")
		f.Plain[name] = demoValue(name)
		ct, err := secrets.Encrypt([]byte(f.Plain[name]), r.PublicKeys, r.Armor)
		if err != nil {
			t.Fatalf("encrypt %s: %v", r.File, err)
		}
		files[r.File] = string(ct)
	}

	// The private git server, its repository, and a local clone.
	f.Git = rig.StartGitServer(t, f.Deploy.Line)
	f.Rev = f.Git.AddRepo(t, "secrets", files)
	f.SecretsDir = filepath.Join(t.TempDir(), "secrets")
	nixtest.Run(t, "/", nil, "git", "clone", "-q", f.Git.RepoPath("secrets"), f.SecretsDir)
	if f.NarHash, err = flake.NarHash(f.SecretsDir); err != nil {
		t.Fatal(err)
	}
	f.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f.KnownHosts, []byte(f.Git.GuestKnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The flake: the URL the VM reaches, and the lock.
	url := "git+" + f.Git.GuestURL("secrets")
	f.rewrite(t, "flake.nix", placeholderURL, url)
	f.WriteLock(t, f.Rev, f.NarHash)
	return f
}

// WriteLock (re)writes the flake's lock with the secrets input at rev and
// narHash (for tests that lock something the repository does not have).
func (f *Fleet) WriteLock(t testenv.TB, rev, narHash string) {
	t.Helper()
	url := "git+" + f.Git.GuestURL("secrets")
	lock := `{
  "nodes": {
    "root": { "inputs": { "secrets": "secrets" } },
    "secrets": {
      "flake": false,
      "locked": { "type": "git", "url": "` + strings.TrimPrefix(url, "git+") + `", "rev": "` + rev + `", "narHash": "` + narHash + `" },
      "original": { "type": "git", "url": "` + strings.TrimPrefix(url, "git+") + `" }
    }
  },
  "root": "root",
  "version": 7
}
`
	if err := os.WriteFile(filepath.Join(f.Dir, "flake.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
}

// IsEscrow reports whether a rules entry is a host's escrowed identity
// (hosts/HOST/host-key.age): Setup leaves those to fleet keys escrow.
func IsEscrow(file string) bool {
	return strings.HasPrefix(file, "hosts/") && strings.HasSuffix(file, "/host-key.age")
}

// CommitSecrets commits what changed in the local clone of the secrets
// repository (SecretsDir: an escrow fleet keys escrow wrote there), pushes
// it to the git server and locks the flake to the new commit, as an
// operator does with git commit, git push and nix flake update secrets.
func (f *Fleet) CommitSecrets(t testenv.TB, msg string) {
	t.Helper()
	nixtest.Git(t, f.SecretsDir, "add", "-A")
	nixtest.Git(t, f.SecretsDir, "commit", "-q", "-m", msg)
	nixtest.Git(t, f.SecretsDir, "push", "-q", "origin", "HEAD:main")
	f.Rev = strings.TrimSpace(nixtest.Git(t, f.SecretsDir, "rev-parse", "HEAD"))
	var err error
	if f.NarHash, err = flake.NarHash(f.SecretsDir); err != nil {
		t.Fatal(err)
	}
	f.WriteLock(t, f.Rev, f.NarHash)
}

// Declared are the secrets each host's file declares (hosts/*.nix), with
// the path each is decrypted to. The rig tests compare them with the spec
// fleet evaluates, so a change to the example shows up here.
var Declared = map[string]map[string]string{
	"nas": {
		"openai-key": "/run/agenix/openai-key", "anthropic-api-key": "/run/agenix/anthropic-api-key",
		"datadog-api-key": "/run/agenix/datadog-api-key", "datadog-app-key": "/run/agenix/datadog-app-key",
		"smb-credentials": "/run/agenix/smb-credentials", "protonvpn-wireguard": "/etc/wireguard/wg0.conf",
	},
	"router": {"protonvpn-wireguard": "/etc/wireguard/wg0.conf", "datadog-api-key": "/run/agenix/datadog-api-key"},
	"vault":  {"openai-key": "/run/agenix/openai-key", "anthropic-api-key": "/run/agenix/anthropic-api-key"},
}

// PrivateKeys are the bytes of every private key the example made: the
// deploy key, the operator's age identity and each host key. None may be
// found on an installer after an install.
func (f *Fleet) PrivateKeys() ([][]byte, error) {
	paths := []string{f.Deploy.Path, f.Operator}
	for _, h := range Hosts {
		paths = append(paths, f.HostKeys[h].Path)
	}
	var keys [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, b)
	}
	return keys, nil
}

// InstallArgs are the `fleet install` arguments that install host from
// this fleet onto the installer at target (USER@HOST:PORT), whose host key
// has the fingerprint hostKey, logging in with identity (a private key
// file): the secrets fetched by the installer through an agent scoped to
// the deploy key, the disks erased without asking.
func (f *Fleet) InstallArgs(host, target, identity, hostKey string) []string {
	return []string{"install", host, "--flake", f.Dir, "--target", target, "-i", identity,
		"--host-key", hostKey, "--ssh-config", "none", "--known-hosts", f.KnownHosts,
		"--host-identity", f.HostKeys[host].Path, "--secrets-dir", f.SecretsDir,
		"--forward-key", f.Deploy.Fingerprint(), "--yes"}
}

// HostPublicKey is host's SSH host key as an ssh.PublicKey.
func (f *Fleet) HostPublicKey(host string) ssh.PublicKey { return f.HostKeys[host].Public }

func (f *Fleet) rewrite(t testenv.TB, name, old, new string) {
	t.Helper()
	p := filepath.Join(f.Dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s no longer contains %q: update test/homelab", p, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// demoValue is a random value shaped like the secret it stands for.
func demoValue(name string) string {
	b := make([]byte, 12)
	rand.Read(b)
	r := hex.EncodeToString(b)
	switch name {
	case "smb-credentials":
		return "username=nas\npassword=" + r + "\n"
	case "protonvpn-wireguard":
		return "[Interface]\nPrivateKey = demo" + r + "=\nAddress = 10.2.0.2/32\n"
	}
	return "demo-" + name + "-" + r
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}
