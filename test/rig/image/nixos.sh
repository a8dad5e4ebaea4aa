# image/nixos.sh (sourced by build.sh): what the NixOS installers the
# profiles reproduce (profiles/iso.sh, profiles/kexec.sh) have in common,
# on the Debian root in $r. Facts from nixpkgs (nixos/modules/...) as
# read with the project's search tools, 2026-11; each function says where.

# nixos_os_release: /etc/os-release as nixos/modules/misc/version.nix
# writes it (osReleaseContents; VARIANT_ID from system.nixos.variant_id,
# which profiles/installation-device.nix sets to "installer"). NixOS has
# only /etc/os-release; the Debian copy in /usr/lib is overwritten too so
# that nothing reads "debian" there.
nixos_os_release() {
	rm -f "$r/etc/os-release"
	cat >"$r/etc/os-release" <<'REL'
ANSI_COLOR="0;38;2;126;186;228"
BUG_REPORT_URL="https://github.com/NixOS/nixpkgs/issues"
BUILD_ID="25.05.20250720.rig"
CPE_NAME="cpe:/o:nixos:nixos:25.05"
DEFAULT_HOSTNAME=nixos
DOCUMENTATION_URL="https://nixos.org/learn.html"
HOME_URL="https://nixos.org/"
ID=nixos
LOGO="nix-snowflake"
NAME=NixOS
PRETTY_NAME="NixOS 25.05 (Warbler)"
SUPPORT_URL="https://nixos.org/community.html"
VARIANT_ID=installer
VENDOR_NAME=NixOS
VENDOR_URL="https://nixos.org/"
VERSION="25.05 (Warbler)"
VERSION_CODENAME=warbler
VERSION_ID="25.05"
REL
	cp "$r/etc/os-release" "$r/usr/lib/os-release"
}

# nixos_sshd HOSTKEY...: sshd_config as services/networking/ssh/sshd.nix
# generates it for an installer. installation-device.nix enables sshd with
# settings.PermitRootLogin = "yes"; the rest are sshd.nix's defaults:
# PasswordAuthentication and KbdInteractiveAuthentication true, UsePAM,
# StrictModes, X11Forwarding no, PrintMotd no, LogLevel INFO,
# AuthorizedKeysFile "%h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u",
# the curated algorithms (enableRecommendedAlgorithms), and one HostKey
# line per services.openssh.hostKeys entry, in order. The KexAlgorithms
# drop mlkem768x25519-sha256 and the unsuffixed sntrup761x25519-sha512,
# which Debian 12's OpenSSH 9.2 does not know (sshd would not start).
# PermitEmptyPasswords is OpenSSH's default, no: the empty passwords
# installation-device.nix gives root and nixos (initialHashedPassword =
# "") let nobody in over SSH until someone runs passwd at the console.
# Agent forwarding is OpenSSH's default, yes.
nixos_sshd() {
	{
		echo "AddressFamily any"
		echo "Port 22"
		echo "UsePAM yes"
		echo "AuthorizedKeysFile %h/.ssh/authorized_keys /etc/ssh/authorized_keys.d/%u"
		echo "AuthorizedPrincipalsFile none"
		echo "GatewayPorts no"
		echo "KbdInteractiveAuthentication yes"
		echo "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group-exchange-sha256"
		echo "LogLevel INFO"
		echo "Macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com"
		echo "PasswordAuthentication yes"
		echo "PermitRootLogin yes"
		echo "PrintMotd no"
		echo "StrictModes yes"
		echo "UseDNS no"
		echo "X11Forwarding no"
		echo "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
		for k in "$@"; do echo "HostKey /etc/ssh/ssh_host_${k}_key"; done
		echo "Subsystem sftp /usr/lib/openssh/sftp-server"
	} >"$r/etc/ssh/sshd_config"
	rm -rf "$r/etc/ssh/sshd_config.d"
	mkdir -p "$r/etc/ssh/authorized_keys.d"
	for k in "$@"; do
		case $k in
		rsa) ssh-keygen -q -t rsa -b 4096 -N '' -C root@nixos -f "$r/etc/ssh/ssh_host_rsa_key" ;;
		*) ssh-keygen -q -t "$k" -N '' -C root@nixos -f "$r/etc/ssh/ssh_host_${k}_key" ;;
		esac
	done
}

# nixos_shell: on NixOS every installed program is on every user's PATH
# (/run/current-system/sw/bin has no sbin split), for SSH sessions too
# (pam_env), and /bin/sh is bash (environment.binsh). Debian keeps the
# disk tools in /usr/sbin, off a plain user's PATH: /etc/environment puts
# them back for PAM sessions, as NixOS's PATH would.
nixos_shell() {
	echo 'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"' >"$r/etc/environment"
	ln -sf bash "$r/usr/bin/sh"
}

# nixos_empty_password USER...: initialHashedPassword = "" (an empty
# password field: a console login without password, no SSH login).
nixos_empty_password() {
	for u in "$@"; do usermod -R "$r" -p '' "$u"; done
}
