# image/common.sh (sourced by build.sh): what every rig image shares,
# applied to the image's root in $r before the profile:
#
# - static network for qemu's user networking (10.0.2.15, host 10.0.2.2);
# - units that only slow a throwaway VM masked;
# - nix evaluating as root without a daemon;
# - /etc/NIXOS and the STAND-IN nixos-install (see its header);
# - the rig's control channel: a second sshd on port 2222 that only the
#   harness uses (key in /etc/rig/authorized_keys, seeded per VM in the
#   overlay), so each profile's real sshd on port 22 stays exactly as
#   that installer has it, and the harness can still inspect a VM whose
#   root cannot log in (the iso profile).

common_apply() {
	rr=$r
	mkdir -p "$rr/root/.ssh"
	chmod 700 "$rr/root/.ssh"

	# qemu user networking: the guest is 10.0.2.15, the host 10.0.2.2. The
	# NIC driver is loaded by the initramfs and net.ifnames=0 keeps it
	# eth0, so a static address needs no DHCP client nor systemd-networkd.
	cat >"$rr/etc/systemd/system/rig-network.service" <<'UNIT'
[Unit]
Description=rig static network (qemu user networking)
DefaultDependencies=no
Before=network.target ssh.service rig-control.service
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2; echo nameserver 10.0.2.3 >/etc/resolv.conf'
[Install]
WantedBy=multi-user.target
UNIT
	ln -sf /etc/systemd/system/rig-network.service "$rr/etc/systemd/system/multi-user.target.wants/rig-network.service"
	# Units that only slow a throwaway VM down.
	for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
		systemd-networkd-wait-online.service mdmonitor.service mdcheck_start.timer mdcheck_continue.timer \
		mdmonitor-oneshot.timer lvm2-monitor.service getty@tty1.service nvmf-autoconnect.service; do
		ln -sf /dev/null "$rr/etc/systemd/system/$u"
	done

	# Nix evaluates flakes as root, without a daemon or build users;
	# profiles add the experimental features their installer enables.
	mkdir -p "$rr/etc/nix"
	printf 'build-users-group =\nsandbox = false\n' >"$rr/etc/nix/nix.conf"
	# A NixOS system has /etc/NIXOS; the STAND-IN nixos-install is kept
	# next to this script (see its header).
	touch "$rr/etc/NIXOS"
	install -m 0755 "$here/nixos-install" "$rr/usr/local/sbin/nixos-install"

	# The control channel (see above). Its host key is made per image.
	mkdir -p "$rr/etc/rig"
	chmod 700 "$rr/etc/rig"
	cat >"$rr/etc/rig/control.conf" <<'CONF'
# The rig's control channel: for the test harness only (port 2222,
# forwarded to the host like port 22). Not part of any installer.
Port 2222
HostKey /etc/rig/control_host_key
AuthorizedKeysFile /etc/rig/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowAgentForwarding yes
UseDNS no
PidFile /run/rig-control.pid
Subsystem sftp internal-sftp
CONF
	cat >"$rr/etc/systemd/system/rig-control.service" <<'UNIT'
[Unit]
Description=the rig's control channel (an sshd for the test harness only)
After=rig-network.service
[Service]
ExecStartPre=/bin/mkdir -p -m 0755 /run/sshd
ExecStart=/usr/sbin/sshd -D -e -f /etc/rig/control.conf
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
	ln -sf /etc/systemd/system/rig-control.service "$rr/etc/systemd/system/multi-user.target.wants/rig-control.service"
}

# hide PROGRAM...: take programs off the PATH, as an installer without
# them is, by moving them under /usr/lib/rig/hidden (same relative path).
# The stand-in nixos-install puts them back on the installed system,
# which a real install would build with whatever its configuration says.
hide() {
	for p in "$@"; do
		found=
		for d in usr/bin usr/sbin; do
			if [ -e "$r/$d/$p" ] || [ -L "$r/$d/$p" ]; then
				mkdir -p "$r/usr/lib/rig/hidden/$d"
				mv "$r/$d/$p" "$r/usr/lib/rig/hidden/$d/$p"
				found=1
			fi
		done
		[ -n "$found" ] || die "hide $p: not in the image (is it in ./packages?)"
	done
}

# set_hostname NAME: /etc/hostname, and NAME resolving as NixOS's
# networking.hosts has it by default ("127.0.0.2" = [ hostName ],
# nixos/modules/config/networking.nix), which sudo needs.
set_hostname() {
	echo "$1" >"$r/etc/hostname"
	echo "127.0.0.2 $1" >>"$r/etc/hosts"
}
