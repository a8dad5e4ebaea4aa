package main

import (
	"context"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/installers"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
)

// profileProof runs test/installers' proof on profile p with the real
// `fleet` command (testscript's copy of this binary on $PATH): the
// refusals by exact error with the disks' bytes unchanged, then the
// install of the example's nas, every secret verified at first boot, no
// key bytes and no fleet files left on the installer, its authorized_keys
// unchanged, one SSH connection per boot.
func profileProof(t *testing.T, p installers.Profile) {
	rig.Require(t)
	nixtest.Require(t, "git", "age", "nix")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	r := &installers.Run{T: t, P: p, Fleet: "fleet", Say: func(format string, args ...any) { t.Logf("==> "+format, args...) }}
	start := time.Now()
	if err := r.Proof(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("proof on the %s installer in %s; fleet's summary:\n%s", p.Name, time.Since(start).Round(time.Second), r.Summary)
}

// TestInstallISOOnRig (#16): the official NixOS ISO's profile, whose
// nixos user has a password set at the console and sudo, root no key;
// its disks hold an old install that udev assembled at boot (an md raid1
// with an active LVM volume, a LUKS header; an array spanning a disk
// outside the layout). Refused: a wrong password; the disk held by the
// spanning array. Then nas is installed logging in with the password
// only: destroy takes the old install down, the installer fetches the
// secrets through the agent forwarded to nixos, used as root through
// sudo, and fleet reaches the installed system as root with the
// operator's key.
func TestInstallISOOnRig(t *testing.T) { profileProof(t, installers.ISO) }

// TestInstallKexecOnRig (#16): nixos-images' kexec installer's profile,
// root with keys, no git and no cryptsetup. Refused: vault, whose layout
// has LUKS, naming cryptsetup. Then nas is installed with the secrets
// input fetched on this machine and streamed in, and no agent forwarded.
func TestInstallKexecOnRig(t *testing.T) { profileProof(t, installers.Kexec) }
