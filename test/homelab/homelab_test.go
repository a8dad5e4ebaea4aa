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

// TestPlatform: the example's nas is aarch64-linux and the other hosts
// x86_64-linux, as the real nix evaluates the instantiated flake's host
// files; Platform changes nas's in the copy only. A hardware
// configuration next to a host file is merged under it (hosts/hardware.nix):
// its initrd modules appear, its platform (lib.mkDefault) does not win.
func TestPlatform(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen", "nix-instantiate")
	platforms := func(dir string) string {
		return strings.TrimSpace(nixtest.Run(t, dir, []string{"NIX_CONFIG=build-users-group ="}, "nix-instantiate", "--eval", "--strict", "-E", `
let h = n: let c = import (./hosts + "/${n}.nix") { secrets = "/secrets"; }; in
  "${n}=${c.nixpkgs.hostPlatform.system}:${builtins.concatStringsSep "," (c.boot.initrd.availableKernelModules or [ ])}";
in builtins.concatStringsSep " " (map h [ "nas" "router" "vault" ])`))
	}
	f := Setup(t)
	if got := platforms(f.Dir); got != `"nas=aarch64-linux: router=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("the example as committed: %s", got)
	}
	os.WriteFile(filepath.Join(f.Dir, "hosts", "nas-hardware.nix"), []byte(`{ config, lib, modulesPath, ... }: {
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" ];
  networking.useDHCP = lib.mkDefault true;
  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
}
`), 0o644)
	if got := platforms(f.Dir); got != `"nas=aarch64-linux:virtio_pci,virtio_blk router=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("with nas-hardware.nix: %s", got)
	}
	x := Setup(t, Platform("nas", RigSystem("x86_64")))
	if got := platforms(x.Dir); got != `"nas=x86_64-linux: router=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("with Platform(nas, x86_64-linux): %s", got)
	}
	if got := platforms(Source()); got != `"nas=aarch64-linux: router=x86_64-linux: vault=x86_64-linux:"` {
		t.Errorf("Platform changed the committed example: %s", got)
	}
}
