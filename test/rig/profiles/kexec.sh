# profiles/kexec.sh: nixos-images' kexec installer in its "noninteractive"
# variant, the one nixos-anywhere downloads by default, on the rig's
# Debian root ($r; sourced by build.sh).
#
# Where each fact comes from (nix-community/nixos-images, fetched
# 2026-11; nixpkgs through it):
# - nix/kexec-installer/module.nix imports nixpkgs' netboot-minimal.nix
#   (-> netboot-base.nix -> profiles/base.nix + installation-device.nix),
#   ../installer.nix, networkd.nix, serial.nix, restore-remote-access.nix.
# - nix/noninteractive.nix: disabledModules = [ "profiles/base.nix" ], so
#   no cryptsetup (luksroot adds it only for configured LUKS devices) and
#   none of base.nix's tools; environment.defaultPackages = parted,
#   gptfdisk, e2fsprogs (and zfs, zfs-minimal.nix); security.sudo.enable =
#   false (no sudo); users.users.nixos becomes a system user (group nixos,
#   shell bash); boot.supportedFilesystems ext4 btrfs f2fs ntfs vfat xfs.
# - No git: this rig reproduces the image nixos-anywhere fetches as the
#   issue describes it (nothing in the noninteractive chain enables
#   programs.git; nixpkgs later moved programs.git.enable = mkDefault
#   true into installation-device.nix, so newer images may have it).
# - nix/installer.nix: nixos-install-tools, jq, rsync, nixos-facter,
#   disko on the PATH; networking.hostName "nixos-installer".
# - nix/nix-settings.nix: experimental-features nix-command flakes.
# - Login: kexec-run.sh carries root's authorized_keys (and the host keys)
#   of the system it replaced; restore-remote-access.nix installs them
#   mode 0400 in /root/.ssh. The rig seeds the operator key there.
#   installation-device.nix still gives root an empty password and sets
#   PermitRootLogin "yes" (sshd config: image/nixos.sh).
# - /etc/os-release as any NixOS installer: ID=nixos, VARIANT_ID=installer.
profile_login=root
profile_root_keys=yes

profile_apply() {
	. "$here/image/nixos.sh"
	set_hostname nixos-installer
	groupadd -R "$r" --system nixos
	useradd -R "$r" --system -g nixos -s /bin/bash -d /var/empty -c "" nixos
	nixos_empty_password root
	# The host keys kexec-run.sh carried over: one ed25519 key here.
	nixos_sshd ed25519
	printf 'experimental-features = nix-command flakes\n' >>"$r/etc/nix/nix.conf"
	nixos_os_release
	nixos_shell
	hide git cryptsetup integritysetup veritysetup sudo age efibootmgr nvme
}
