# profiles/iso.sh: the official NixOS minimal ISO (installation-cd-minimal.nix
# -> installation-cd-base.nix -> profiles/base.nix + profiles/installation-device.nix),
# NixOS 25.05, on the rig's Debian root ($r; sourced by build.sh).
#
# Where each fact comes from (nixpkgs, read with the project's search tools):
# - Login: profiles/installation-device.nix makes users.users.nixos
#   (isNormalUser, extraGroups wheel networkmanager video,
#   initialHashedPassword = "") and gives root initialHashedPassword = "";
#   security.sudo with wheelNeedsPassword = false. Nothing logs in over SSH
#   until someone runs `passwd` at the console (its getty helpLine says
#   so): the rig does that with Options.Passwords, hashing on the host into
#   the overlay's /etc/shadow. (installation-cd-base.nix also reads a
#   live.nixos.passwd= kernel parameter; the rig does not use it, since
#   the password would show in the VM's /proc/cmdline.) Root has no
#   authorized key: the rig seeds none.
# - sshd: installation-device.nix enables it with PermitRootLogin "yes";
#   sshd.nix's defaults otherwise (image/nixos.sh); services.openssh.hostKeys
#   defaults to RSA 4096 first, then ed25519.
# - /etc/os-release: ID=nixos, VARIANT_ID=installer (image/nixos.sh).
# - Tools: profiles/base.nix adds gptfdisk, parted, cryptsetup, ddrescue,
#   efibootmgr, nvme-cli, smartmontools (...), dosfstools, xfsprogs,
#   f2fs-tools; supportedFilesystems brings btrfs-progs; lvm.nix has
#   services.lvm.enable; installation-device.nix sets boot.swraid.enable
#   (mdadm and its udev rules). git from 24.11 on: programs.git.enable =
#   mkDefault true (installation-cd-base.nix, nixpkgs PR 325511; later
#   nixpkgs moved it into installation-device.nix), rsync likewise
#   (environment.defaultPackages). No openssl binary (never installed
#   here), no age, no jq on the PATH (jq is only in the store, through
#   system.extraDependencies): hidden.
# - Nix: the ISO's nix.conf has no experimental features (nixos-install
#   --flake adds nix-command and flakes itself).
# - udev: systemd-udevd runs with mdadm's and lvm2's rules (Debian ships
#   them with the packages), so old arrays and volume groups on the disks
#   are assembled and activated at boot.
profile_login=nixos
profile_root_keys=no

profile_apply() {
	. "$here/image/nixos.sh"
	set_hostname nixos
	groupadd -R "$r" wheel
	groupadd -R "$r" networkmanager
	useradd -R "$r" -m -u 1000 -g users -G wheel,networkmanager,video -s /bin/bash -c "" nixos
	nixos_empty_password root nixos
	# security.sudo: wheelNeedsPassword = false.
	echo '%wheel  ALL=(ALL:ALL)    NOPASSWD: SETENV: ALL' >"$r/etc/sudoers.d/wheel"
	chmod 0440 "$r/etc/sudoers.d/wheel"
	nixos_sshd rsa ed25519
	nixos_os_release
	nixos_shell
	hide age jq
}
