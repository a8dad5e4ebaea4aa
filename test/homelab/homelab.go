// Package homelab sets up the example fleet in examples/homelab for the
// rig: it makes the keys (the operator's age identity, the deploy key of
// the secrets repositories, each host's SSH host key), encrypts demo
// values of the seed's secrets with fleet's own secrets package by the
// rules of each place the example keeps .age files, serves the two
// private repositories (the flake's inputs secrets and agenix-secrets)
// from a private git server on the loopback, and instantiates the flake:
// a copy with the flake's own .age files (vault's) in its secrets/, whose
// inputs point at the server (as the VM reaches it) and whose flake.lock
// pins each repository's commit by rev and narHash.
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
	"regexp"
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
var Hosts = []string{"nas", "router", "vault", "tank", "pi"}

// placeholderURL is an input's URL in the committed flake.nix.
func placeholderURL(input string) string {
	return "git+ssh://git@secrets.homelab.invalid/" + input + ".git"
}

// Inputs are where each host's .age files are: an input of the flake (a
// private repository served at set-up, its rules in repos/INPUT/), or
// "self", the flake's own secrets/.
var Inputs = map[string]string{"nas": "secrets", "router": "agenix-secrets", "vault": "self", "tank": "secrets", "pi": "secrets"}

// Repos are the flake's inputs that hold .age files, in order.
var Repos = []string{"secrets", "agenix-secrets"}

// Repo is one served secrets repository.
type Repo struct {
	Input   string // the flake input that locks it (and its name on the git server)
	Dir     string // a local clone, at Rev
	Rev     string
	NarHash string
}

// Fleet is the instantiated example.
type Fleet struct {
	// Dir is the flake (a copy of examples/homelab with the inputs' URLs,
	// its own .age files and flake.lock filled in).
	Dir string
	// Repos are the served secrets repositories, by input name.
	Repos map[string]*Repo
	// SecretsDir, Rev and NarHash are Repos["secrets"]'s (nas's).
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
	// Admin is the operator's SSH key, which the hosts' configuration
	// authorizes for root (hosts/admins.nix): how fleet logs in to an
	// installed host.
	Admin sshtest.Key
	// HostKeys are each host's SSH host key, which is also its age identity.
	HostKeys map[string]sshtest.Key
	// Plain is each secret's plaintext (file name without .age -> value).
	Plain map[string]string
	// Changed says what the options changed in the copy, one line each
	// (for the tests and the demo to show), e.g. "hosts/nas.nix:
	// aarch64-linux -> x86_64-linux".
	Changed []string
}

// Source is the committed example's directory.
func Source() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "homelab")
}

// Option changes how [Setup] instantiates the example.
type Option func(t testenv.TB, f *Fleet)

// Platform instantiates the example with host's platform
// (nixpkgs.hostPlatform) set to system, e.g. "x86_64-linux", instead of
// the one its file declares. The example's nas is the mission's ARM NAS,
// aarch64-linux; the tests and demo scenarios that install it on the
// x86_64 rig (cheap: no emulated ARM guest) set it to the rig's
// architecture with this, and say so. Only the instantiated copy
// changes.
func Platform(host, system string) Option {
	return func(t testenv.TB, f *Fleet) {
		t.Helper()
		f.setSystem(t, host, system)
	}
}

// RigSystem is the Nix system of the rig's architecture arch
// (rig.ArchX86_64 -> x86_64-linux).
func RigSystem(arch string) string {
	if arch == "" {
		arch = rig.ArchX86_64
	}
	return arch + "-linux"
}

// Setup instantiates the example fleet for t (see the package doc), with
// opts applied to the copy.
func Setup(t testenv.TB, opts ...Option) *Fleet {
	t.Helper()
	nixtest.Require(t, "git")
	f := &Fleet{Dir: filepath.Join(t.TempDir(), "homelab"), HostKeys: map[string]sshtest.Key{}, Plain: map[string]string{}}
	if err := copyTree(Source(), f.Dir); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(t, f)
	}

	// Keys, made on the spot.
	f.Deploy = sshtest.NewKey(t, "ed25519", "", "deploy@homelab")
	f.Admin = sshtest.NewKey(t, "ed25519", "", "admin@homelab")
	if err := os.WriteFile(filepath.Join(f.Dir, "hosts", "admins.nix"), []byte(fmt.Sprintf("[ %q ]\n", strings.TrimSpace(f.Admin.Line))), 0o644); err != nil {
		t.Fatal(err)
	}
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

	// Each place the example keeps .age files, encrypted by its rules with
	// fleet's secrets package: the flake's own secrets/, and the two
	// repositories. A secret has one demo value wherever it is kept.
	f.Git = rig.StartGitServer(t, f.Deploy.Line)
	f.Repos = map[string]*Repo{}
	for _, input := range append([]string{SelfInput}, Repos...) {
		src := filepath.Join(f.Dir, "secrets")
		if input != SelfInput {
			src = filepath.Join(f.Dir, "repos", input)
		}
		files := f.encrypt(t, src, keysNix)
		if input == SelfInput {
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		r := &Repo{Input: input, Dir: filepath.Join(t.TempDir(), input)}
		r.Rev = f.Git.AddRepo(t, input, files)
		nixtest.Run(t, "/", nil, "git", "clone", "-q", f.Git.RepoPath(input), r.Dir)
		if r.NarHash, err = flake.NarHash(r.Dir); err != nil {
			t.Fatal(err)
		}
		f.Repos[input] = r
		f.rewrite(t, "flake.nix", placeholderURL(input), "git+"+f.Git.GuestURL(input))
	}
	s := f.Repos["secrets"]
	f.SecretsDir, f.Rev, f.NarHash = s.Dir, s.Rev, s.NarHash
	f.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f.KnownHosts, []byte(f.Git.GuestKnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.WriteLock(t, f.Rev, f.NarHash)
	return f
}

// SelfInput is Inputs' name for the flake's own files.
const SelfInput = "self"

// encrypt writes keysNix into the rules directory src and returns what
// the place holds: its secrets.nix, keys.nix and each .age file its rules
// name, encrypted to the rule's keys (a demo value per secret, the same
// wherever it is kept).
func (f *Fleet) encrypt(t testenv.TB, src, keysNix string) map[string]string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(src, "keys.nix"), []byte(keysNix), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := secrets.LoadRules(context.Background(), filepath.Join(src, "secrets.nix"), "")
	if err != nil {
		t.Fatalf("example %s: %v", filepath.Join(src, "secrets.nix"), err)
	}
	files := map[string]string{}
	for _, name := range []string{"secrets.nix", "keys.nix"} {
		b, err := os.ReadFile(filepath.Join(src, name))
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
		if _, ok := f.Plain[name]; !ok {
			f.Plain[name] = demoValue(name)
		}
		ct, err := secrets.Encrypt([]byte(f.Plain[name]), r.PublicKeys, r.Armor)
		if err != nil {
			t.Fatalf("encrypt %s: %v", r.File, err)
		}
		files[r.File] = string(ct)
	}
	return files
}

// SecretsDirFor is the local clone of the repository host's .age files
// are in ("" for a host whose files are the flake's own).
func (f *Fleet) SecretsDirFor(host string) string {
	if r := f.Repos[Inputs[host]]; r != nil {
		return r.Dir
	}
	return ""
}

// WriteLock (re)writes the flake's lock with the secrets input at rev and
// narHash, and the other inputs at their served commits (for tests that
// lock something the repository does not have).
func (f *Fleet) WriteLock(t testenv.TB, rev, narHash string) {
	t.Helper()
	f.WriteInputLock(t, "secrets", rev, narHash)
}

// WriteInputLock (re)writes the flake's lock with input at rev and
// narHash, and the other inputs at their served commits.
func (f *Fleet) WriteInputLock(t testenv.TB, input, rev, narHash string) {
	t.Helper()
	var nodes, roots []string
	for _, name := range Repos {
		r, nh := f.Repos[name].Rev, f.Repos[name].NarHash
		if name == input {
			r, nh = rev, narHash
		}
		url := f.Git.GuestURL(name)
		nodes = append(nodes, fmt.Sprintf(`    %q: {
      "flake": false,
      "locked": { "type": "git", "url": %q, "rev": %q, "narHash": %q },
      "original": { "type": "git", "url": %q }
    }`, name, url, r, nh, url))
		roots = append(roots, fmt.Sprintf("%q: %q", name, name))
	}
	lock := "{\n  \"nodes\": {\n    \"root\": { \"inputs\": { " + strings.Join(roots, ", ") + " } },\n" +
		strings.Join(nodes, ",\n") + "\n  },\n  \"root\": \"root\",\n  \"version\": 7\n}\n"
	if err := os.WriteFile(filepath.Join(f.Dir, "flake.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
}

// IsEscrow reports whether a rules entry is a host's escrowed identity
// (hosts/HOST/host-key.age): Setup leaves those to fleet keys escrow.
func IsEscrow(file string) bool {
	return strings.HasPrefix(file, "hosts/") && strings.HasSuffix(file, "/host-key.age")
}

// CommitSecrets commits what changed in the local clone of the repository
// that holds host's .age files (an escrow fleet keys escrow wrote there),
// pushes it to the git server and locks the flake to the new commit, as an
// operator does with git commit, git push and nix flake update INPUT. A
// host whose .age files are the flake's own needs none of it: the flake's
// directory is read as it is.
func (f *Fleet) CommitSecrets(t testenv.TB, host, msg string) {
	t.Helper()
	r := f.Repos[Inputs[host]]
	if r == nil {
		return
	}
	nixtest.Git(t, r.Dir, "add", "-A")
	nixtest.Git(t, r.Dir, "commit", "-q", "-m", msg)
	nixtest.Git(t, r.Dir, "push", "-q", "origin", "HEAD:main")
	r.Rev = strings.TrimSpace(nixtest.Git(t, r.Dir, "rev-parse", "HEAD"))
	var err error
	if r.NarHash, err = flake.NarHash(r.Dir); err != nil {
		t.Fatal(err)
	}
	if r.Input == "secrets" {
		f.Rev, f.NarHash = r.Rev, r.NarHash
	}
	f.WriteInputLock(t, r.Input, r.Rev, r.NarHash)
}

// Declared are the secrets each host's file declares (hosts/*.nix), with
// the path each is decrypted to (each .age file is where Inputs says).
// The rig tests compare them with the spec fleet evaluates, so a change to
// the example shows up here.
var Declared = map[string]map[string]string{
	"nas": {
		"openai-key": "/run/agenix/openai-key", "anthropic-api-key": "/run/agenix/anthropic-api-key",
		"datadog-api-key": "/run/agenix/datadog-api-key", "datadog-app-key": "/run/agenix/datadog-app-key",
		"smb-credentials": "/run/agenix/smb-credentials", "protonvpn-wireguard": "/etc/wireguard/wg0.conf",
	},
	"router": {"protonvpn-wireguard": "/etc/wireguard/wg0.conf", "datadog-api-key": "/run/agenix/datadog-api-key"},
	"vault":  {"openai-key": "/run/agenix/openai-key", "anthropic-api-key": "/run/agenix/anthropic-api-key"},
	"tank":   {"tank-key": "/run/agenix/tank-key", "restic-password": "/run/agenix/restic-password"},
	"pi":     {"wifi-psk": "/run/agenix/wifi-psk", "mqtt-password": "/run/agenix/mqtt-password"},
}

// TankZFSState is a script that prints, on an installed tank, what its
// layout (hosts/tank.nix) means for ZFS at boot: its hostid
// (networking.hostId), the pool's last export and import (zpool
// history: the installer exported it, the installed system imported it
// without -f), each dataset's mount, and the encrypted dataset's key
// location and status. TankZFSWant is its output on a good install.
const TankZFSState = `echo "hostid $(hostid)"
zpool history tank | grep -E ' zpool (import|export) ' | tail -n 2 | cut -d' ' -f2-
for m in /srv/data /srv/media /srv/secret; do findmnt -n -o TARGET,SOURCE,FSTYPE "$m"; done
echo "tank/secret keylocation $(zfs get -H -o value keylocation tank/secret), key $(zfs get -H -o value keystatus tank/secret)"
`

// TankZFSWant: see TankZFSState.
const TankZFSWant = `hostid 7a4b1c2d
zpool export tank
zpool import -d /dev/disk/by-id -N tank
/srv/data tank/data zfs
/srv/media tank/media zfs
/srv/secret tank/secret zfs
tank/secret keylocation file:///run/agenix/tank-key, key available
`

// PrivateKeys are the bytes of every private key the example made: the
// deploy key, the operator's age identity and SSH key, and each host key. None may be
// found on an installer after an install.
func (f *Fleet) PrivateKeys() ([][]byte, error) {
	paths := []string{f.Deploy.Path, f.Operator, f.Admin.Path}
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
// file): the .age files of an input fetched by the installer through an
// agent scoped to the deploy key (and checked here against the local
// clone), the flake's own staged with it; the disks erased without asking.
func (f *Fleet) InstallArgs(host, target, identity, hostKey string) []string {
	args := []string{"install", host, "--flake", f.Dir, "--target", target, "-i", identity,
		"--host-key", hostKey, "--ssh-config", "none", "--known-hosts", f.KnownHosts,
		"--host-identity", f.HostKeys[host].Path, "--forward-key", f.Deploy.Fingerprint(), "--yes"}
	if d := f.SecretsDirFor(host); d != "" {
		args = append(args, "--secrets-dir", d)
	}
	return args
}

// WithoutFlag is args (InstallArgs') without flag and its value, for a
// run that gives it otherwise or not at all.
func WithoutFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == flag && i+1 < len(args) {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// OperatorEnv is the environment of the operator's fleet for this
// fleet: an ssh-agent holding the deploy key and a personal key (the
// installer may use only the first), and a private nix store for fleet's
// local evaluation (nix-bin as root).
func (f *Fleet) OperatorEnv(t testenv.TB) []string {
	agent := sshtest.StartAgent(t, f.Deploy, sshtest.NewKey(t, "ed25519", "", "operator-personal"))
	st := nixtest.NewStore(t)
	env := append(os.Environ(), "SSH_AUTH_SOCK="+agent.Socket)
	for _, kv := range st.Env {
		if strings.HasPrefix(kv, "NIX_CONFIG=") {
			kv += "\nstore = " + st.Path
		}
		env = append(env, kv)
	}
	return env
}

// HostPublicKey is host's SSH host key as an ssh.PublicKey.
func (f *Fleet) HostPublicKey(host string) ssh.PublicKey { return f.HostKeys[host].Public }

// commonCall matches a host file's call of common.nix, with the
// platform it may give.
var commonCall = regexp.MustCompile(`import \./common\.nix \{ hostName = "([^"]+)";(?: system = "([^"]*)";)? \}`)

// setSystem makes host's file give system to common.nix.
func (f *Fleet) setSystem(t testenv.TB, host, system string) {
	t.Helper()
	p := filepath.Join(f.Dir, "hosts", host+".nix")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m := commonCall.FindSubmatchIndex(b)
	if m == nil || string(b[m[2]:m[3]]) != host {
		t.Fatalf("%s no longer calls common.nix as test/homelab expects (%s): update Platform", p, commonCall)
	}
	was := "x86_64-linux" // common.nix's default
	if m[4] >= 0 {
		was = string(b[m[4]:m[5]])
	}
	if was == system {
		return
	}
	f.Changed = append(f.Changed, fmt.Sprintf("hosts/%s.nix: %s -> %s", host, was, system))
	call := fmt.Sprintf(`import ./common.nix { hostName = %q; system = %q; }`, host, system)
	out := append(append(append([]byte{}, b[:m[0]]...), call...), b[m[1]:]...)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

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
	case "tank-key": // a zfs passphrase: one line, 8 to 512 bytes
		return "demo-tank-key-" + r + "\n"
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
