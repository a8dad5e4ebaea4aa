package homelab

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/provision"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
)

// TestSetup: the instantiated example is consistent without a VM: the
// lock pins each served repository's commit and narHash, the flake points
// at the server, the operator's key decrypts every .age file wherever it
// is kept, and each host's declared secrets decrypt with its own host key.
// Then fleet evaluates each host from the flake with the real nix (the
// inputs read from the local clones, as --secrets-dir does) and finds its
// .age files where Inputs says, at the paths Declared says.
func TestSetup(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen", "nix")
	f := Setup(t)
	lock, err := flake.ReadLock(filepath.Join(f.Dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	nix, _ := os.ReadFile(filepath.Join(f.Dir, "flake.nix"))
	for _, name := range Repos {
		r := f.Repos[name]
		in, err := lock.Input(name)
		if err != nil {
			t.Fatal(err)
		}
		if in.Locked.Rev != r.Rev || in.Locked.NarHash != r.NarHash {
			t.Fatalf("%s: lock %s %s, served %s %s", name, in.Locked.Rev, in.Locked.NarHash, r.Rev, r.NarHash)
		}
		if head := strings.TrimSpace(nixtest.Git(t, r.Dir, "rev-parse", "HEAD")); head != r.Rev {
			t.Fatalf("%s: clone at %s, served %s", name, head, r.Rev)
		}
		if strings.Contains(string(nix), placeholderURL(name)) || !strings.Contains(string(nix), f.Git.GuestURL(name)) {
			t.Fatalf("flake.nix does not point %s at the git server", name)
		}
	}
	if f.SecretsDir != f.Repos["secrets"].Dir || f.Rev != f.Repos["secrets"].Rev {
		t.Fatal("SecretsDir and Rev are not the secrets repository's")
	}
	op, err := secrets.LoadIdentities([]string{f.Operator}, nil)
	if err != nil {
		t.Fatal(err)
	}
	place := func(host string) string {
		if d := f.SecretsDirFor(host); d != "" {
			return d
		}
		return filepath.Join(f.Dir, "secrets")
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
			file := filepath.Join(place(host), name+".age")
			for who, id := range map[string]*secrets.Identities{host: ids, "the operator": op} {
				if got, err := secrets.DecryptFile(file, id); err != nil || string(got) != f.Plain[name] {
					t.Errorf("%s cannot decrypt %s's %s: %v", who, host, file, err)
				}
			}
		}
	}

	// fleet's view, from the real nix.
	for _, kv := range nixtest.NewStore(t).ClientEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for host, declared := range Declared {
		spec, err := provision.HostSource{Name: host, FlakeDir: f.Dir, SecretsDir: f.SecretsDirFor(host)}.Load(context.Background(), &remote.Local{})
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if len(spec.Secrets) != len(declared) || spec.SecretsInput != Inputs[host] {
			t.Errorf("%s: %d secrets in %s, want %d in %s", host, len(spec.Secrets), spec.SecretsInput, len(declared), Inputs[host])
		}
		for name, sec := range spec.Secrets {
			file := name + ".age" // in its repository
			if Inputs[host] == SelfInput {
				file = "secrets/" + file // in the flake
			}
			if sec.Input != Inputs[host] || sec.File != file || sec.Path != declared[name] {
				t.Errorf("%s: %s is %+v, want %s in %s at %s", host, name, sec, file, Inputs[host], declared[name])
			}
		}
	}
}

// TestLayouts: every host's disko layout, evaluated from its file with
// the real Nix, is one fleet parses and plans in each of the install's
// modes; tank's pool is the mirror of data1 and data2 with its encrypted
// dataset's key asked for by the dataset's name.
func TestLayouts(t *testing.T) {
	st := nixtest.NewStore(t)
	for _, host := range Hosts {
		file := filepath.Join(Source(), "hosts", host+".nix")
		out := st.Nix("/", "eval", "--json", "--impure", "--expr", `let f = import `+file+`; in (f (builtins.intersectAttrs (builtins.functionArgs f) { secrets = "/secrets"; agenix-secrets = "/agenix-secrets"; })).disko.devices`)
		s, err := disko.Parse([]byte(out))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		for _, m := range []disko.Mode{disko.ModeDestroyFormatMount, disko.ModeMount, disko.ModeUnmount} {
			if _, err := disko.BuildPlan(s, m, disko.Options{}); err != nil {
				t.Errorf("%s: %s: %v", host, m, err)
			}
		}
		if host != "tank" {
			continue
		}
		steps, _ := disko.BuildPlan(s, disko.ModeDestroyFormatMount, disko.Options{})
		var cmds []string
		for _, st := range steps {
			for _, c := range st.Cmds {
				cmds = append(cmds, strings.Join(c, " ")+" <"+st.KeyName)
			}
		}
		for _, want := range []string{
			"zpool create -f tank -R /mnt -o ashift=12 -O atime=off -O com.sun:auto-snapshot=false -O compression=zstd -O mountpoint=none mirror /dev/vdb1 /dev/vdc1 <",
			"zfs create -up tank/secret -o encryption=aes-256-gcm -o keyformat=passphrase -o keylocation=prompt -o mountpoint=/srv/secret <tank/secret",
			"zfs set keylocation=file:///run/agenix/tank-key tank/secret <tank/secret",
			"mount -t zfs -o defaults -o X-mount.mkdir tank/media /mnt/srv/media <",
		} {
			if !slices.Contains(cmds, want) {
				t.Errorf("tank: no %q in its plan:\n%s", want, strings.Join(cmds, "\n"))
			}
		}
	}
}

// TestPlatform: the example's nas is aarch64-linux and the other hosts
// x86_64-linux, as the real nix evaluates the instantiated flake's host
// files; Platform changes nas's in the copy only. A hardware
// configuration next to a host file is merged under it (hosts/hardware.nix):
// its initrd modules appear, its platform (lib.mkDefault) does not win.
func TestPlatform(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen", "nix-instantiate")
	platforms := func(dir string) string {
		return strings.TrimSpace(nixtest.Run(t, dir, []string{"NIX_CONFIG=build-users-group ="}, "nix-instantiate", "--eval", "--strict", "-E", `
let h = n: let f = import (./hosts + "/${n}.nix"); c = f (builtins.intersectAttrs (builtins.functionArgs f) { secrets = "/s"; agenix-secrets = "/a"; }); in
  "${n}=${c.nixpkgs.hostPlatform.system}:${builtins.concatStringsSep "," (c.boot.initrd.availableKernelModules or [ ])}";
in builtins.concatStringsSep " " (map h [ "nas" "router" "tank" "vault" ])`))
	}
	f := Setup(t)
	if got := platforms(f.Dir); got != `"nas=aarch64-linux: router=x86_64-linux: tank=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("the example as committed: %s", got)
	}
	os.WriteFile(filepath.Join(f.Dir, "hosts", "nas-hardware.nix"), []byte(`{ config, lib, modulesPath, ... }: {
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" ];
  networking.useDHCP = lib.mkDefault true;
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
}
`), 0o644)
	if got := platforms(f.Dir); got != `"nas=aarch64-linux:virtio_pci,virtio_blk router=x86_64-linux: tank=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("with nas-hardware.nix: %s", got)
	}
	x := Setup(t, Platform("nas", RigSystem("x86_64")), Platform("router", "x86_64-linux"))
	if want := []string{"hosts/nas.nix: aarch64-linux -> x86_64-linux"}; !slices.Equal(x.Changed, want) {
		t.Errorf("changed %q, want %q", x.Changed, want)
	}
	if got := platforms(x.Dir); got != `"nas=x86_64-linux: router=x86_64-linux: tank=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("with Platform(nas, x86_64-linux): %s", got)
	}
	if got := platforms(Source()); got != `"nas=aarch64-linux: router=x86_64-linux: tank=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("Platform changed the committed example: %s", got)
	}
}

// TestCommitSecrets: a file written into the clone of the repository a
// host's .age files are in (router's escrow, in agenix-secrets) reaches
// the git server, and the flake locks that input to the commit, the other
// input unchanged; for a host whose files are the flake's own, nothing is
// committed.
func TestCommitSecrets(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen")
	f := Setup(t)
	r := f.Repos["agenix-secrets"]
	before, secretsRev := r.Rev, f.Rev
	p := filepath.Join(f.SecretsDirFor("router"), "hosts/router/host-key.age")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("escrow"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.CommitSecrets(t, "router", "escrow router")
	if r.Rev == before {
		t.Fatal("no new commit")
	}
	if got := nixtest.Git(t, f.Git.RepoPath("agenix-secrets"), "show", r.Rev+":hosts/router/host-key.age"); got != "escrow" {
		t.Fatalf("the server has %q", got)
	}
	lock, err := flake.ReadLock(filepath.Join(f.Dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, _ := lock.Input("agenix-secrets")
	if in.Locked.Rev != r.Rev || in.Locked.NarHash != r.NarHash {
		t.Fatalf("lock %s %s, want %s %s", in.Locked.Rev, in.Locked.NarHash, r.Rev, r.NarHash)
	}
	if in, _ := lock.Input("secrets"); in.Locked.Rev != secretsRev || f.Rev != secretsRev {
		t.Fatalf("the secrets input moved: lock %s, f.Rev %s, want %s", in.Locked.Rev, f.Rev, secretsRev)
	}
	f.CommitSecrets(t, "vault", "nothing to commit") // the flake's own files: no repository
	if !IsEscrow("hosts/nas/host-key.age") || IsEscrow("hosts/nas/smb.age") {
		t.Fatal("IsEscrow")
	}
}

// TestWithoutFlag: a flag and its value go, everything else stays in
// order; a flag at the end without a value stays.
func TestWithoutFlag(t *testing.T) {
	got := WithoutFlag([]string{"install", "nas", "--host-identity", "k", "--yes", "--host-identity"}, "--host-identity")
	if want := []string{"install", "nas", "--yes", "--host-identity"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
