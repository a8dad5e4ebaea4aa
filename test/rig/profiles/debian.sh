# profiles/debian.sh: the rig's own installer (the default profile, as the
# rig was before it had profiles): Debian with every tool in ./packages on
# the PATH, root logs in with a key (the rig seeds root's authorized_keys
# with the operator key), and a NixOS installer in the two ways fleet
# checks (/etc/NIXOS, VARIANT_ID=installer). Shaped like fleet, so it
# proves that the pipeline works; profiles/iso.sh and profiles/kexec.sh
# reproduce what users boot.
#
# Sourced by build.sh with the image's root in $r.
profile_login=root
profile_root_keys=yes

profile_apply() {
	set_hostname installer
	ssh-keygen -q -t ed25519 -N '' -C installer -f "$r/etc/ssh/ssh_host_ed25519_key"
	cat >"$r/etc/ssh/sshd_config.d/rig.conf" <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowAgentForwarding yes
UseDNS no
CONF
	printf 'experimental-features = nix-command flakes\n' >>"$r/etc/nix/nix.conf"
	echo VARIANT_ID=installer >>"$r/usr/lib/os-release"
	# A console login for debugging only.
	usermod -R "$r" -p '' root
}
