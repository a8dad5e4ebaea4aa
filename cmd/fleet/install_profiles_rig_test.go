package main

import (
	"context"
	"os"
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
	rig.RequireArch(t, p.Arch)
	nixtest.Require(t, "git", "age", "nix")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	r := &installers.Run{T: t, P: p, Fleet: "fleet", Say: func(format string, args ...any) { t.Logf("==> "+format, args...) }}
	start := time.Now()
	if err := r.Proof(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("proof on the %s installer in %s (fleet install %s: %s); fleet's summary:\n%s", p.Title(), time.Since(start).Round(time.Second),
		p.Installed(), r.InstallTime.Round(time.Second), r.Summary)
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

// TestInstallAarch64OnRig (#19): the ARM NAS. The rig's installer on
// aarch64 (qemu's virt machine, UEFI firmware, under TCG) installs the
// example's nas as it is, aarch64-linux. Refused first: router, an
// x86_64 host, by the exact error, the disks' bytes unchanged and no
// hardware configuration written. Then nas with --generate-hardware-config
// nixos-generate-config: the file names the VM's virtio disk drivers, the
// installed system is built from it, and the first boot's initrd check
// passes; every secret verified, one SSH connection per boot, nothing
// left on the installer. One boot of the installer, one of the installed
// system.
func TestInstallAarch64OnRig(t *testing.T) { profileProof(t, installers.Aarch64) }

// TestInstallKexecAarch64OnRig (#19): nixos-images' kexec installer on
// aarch64, the one nixos-anywhere kexecs an ARM board into, installs the
// example's pi, the MBR board: an msdos table (disko's legacy table) with
// a bootable FAT32 firmware partition and an ext4 root. Refused first:
// router, an x86_64 host. Then pi with its hardware configuration
// generated: every secret verified at first boot, the secrets input
// fetched here and streamed in (the kexec installer has no git), one SSH
// connection per boot, nothing left on the installer; and the disk's
// bytes, read from its image and by sfdisk: a dos label and no GPT,
// entry 1 bootable of type 0x0c holding FAT32 labelled FIRMWARE, entry 2
// of type 0x83 holding the ext4 root. One boot of the installer (a
// snapshot restored once one is saved), one of the installed system.
func TestInstallKexecAarch64OnRig(t *testing.T) { profileProof(t, installers.KexecAarch64) }

// TestInstallISOAarch64OnRig (#19): the NixOS ISO's profile on aarch64,
// as TestInstallISOOnRig (password login and sudo, an old install that
// udev assembles at boot), plus the refusal of an x86_64 host. It boots
// the aarch64 installer twice under emulation, so it runs only with
// FLEET_RIG_AARCH64=all.
func TestInstallISOAarch64OnRig(t *testing.T) {
	if os.Getenv("FLEET_RIG_AARCH64") != "all" {
		t.Skip("two boots of the aarch64 installer under emulation: set FLEET_RIG_AARCH64=all")
	}
	profileProof(t, installers.ISOAarch64)
}
