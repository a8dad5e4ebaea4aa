#!/bin/sh
# build.sh: build the rig's kernel, initramfs and live-installer image.
#
# Usage: test/rig/build.sh [--print-dir]
#
# Outputs go to $FLEET_RIG_CACHE (default: /var/cache/fleet/rig, outside the
# clone, so every clone on a machine shares one build) under a directory
# named after a hash of every input (this script, the initramfs init, the
# package list, the kernel package version, the Debian suite), so a build
# happens only when an input changes. The last line printed on stdout is
# the output directory. Needs root (debootstrap), debootstrap, apt-get, dpkg,
# kmod, cpio, busybox-static, mkfs.ext4, ssh-keygen; network access to the
# Debian mirror on a cold cache.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${FLEET_RIG_CACHE:-/var/cache/fleet/rig}
suite=bookworm
mirror=${FLEET_RIG_MIRROR:-http://deb.debian.org/debian}
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || { echo "build.sh: cannot resolve the Debian kernel package (apt-get update?)" >&2; exit 1; }
kver_pkg=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
packages=$(grep -v '^#' "$here/packages" | tr '\n' ' ' | sed 's/ *$//;s/  */ /g')

key=$( { cat "$0" "$here/init" "$here/packages" "$here/nixos-install"; echo "$suite $mirror $kpkg $kver_pkg"; } | sha256sum | cut -c1-16)
out=$cache/installer-$key
if [ -f "$out/done" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9
if [ -f "$out/done" ]; then # built by someone else while we waited
	echo "$out"
	exit 0
fi

start=$(date +%s)
tmp=$cache/tmp-$key-$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
log() { echo "rig build: $*" >&2; }

# --- kernel ---------------------------------------------------------------
log "kernel $kpkg $kver_pkg"
(cd "$tmp" && apt-get -o APT::Sandbox::User=root download "$kpkg" >/dev/null)
dpkg -x "$tmp"/linux-image-*.deb "$tmp/k"
kver=$(ls "$tmp/k/lib/modules")
cp "$tmp/k/boot/vmlinuz-$kver" "$tmp/vmlinuz"
# An uncompressed vmlinux boots ~5 s faster under TCG than the bzImage.
if /usr/src/linux-headers-"$kver"/scripts/extract-vmlinux "$tmp/vmlinuz" >"$tmp/vmlinux" 2>/dev/null; then :; else
	# extract-vmlinux is not installed: find the xz stream ourselves.
	off=$(LC_ALL=C grep -aobUP '\xfd7zXZ\x00' "$tmp/vmlinuz" | head -n1 | cut -d: -f1)
	[ -n "$off" ] && tail -c +"$((off + 1))" "$tmp/vmlinuz" | xz -dc --single-stream >"$tmp/vmlinux" 2>/dev/null || true
fi
if ! head -c4 "$tmp/vmlinux" | grep -q ELF; then
	log "no uncompressed vmlinux, booting vmlinuz"
	rm -f "$tmp/vmlinux"
fi

# Trimmed module tree: what the installer needs for disks, filesystems,
# device-mapper, md, crypto and virtio.
m=$tmp/k/lib/modules/$kver
mt=$tmp/modules/lib/modules/$kver
mkdir -p "$mt/kernel/drivers" "$mt/kernel/drivers/net"
cp "$m"/modules.order "$m"/modules.builtin* "$mt/"
cp -a "$m/kernel/fs" "$m/kernel/lib" "$m/kernel/crypto" "$m/kernel/arch" "$mt/kernel/"
for d in virtio block md char/hw_random nvdimm scsi/virtio_scsi.ko; do
	mkdir -p "$mt/kernel/drivers/$(dirname "$d")"
	[ -e "$m/kernel/drivers/$d" ] && cp -a "$m/kernel/drivers/$d" "$mt/kernel/drivers/$(dirname "$d")/"
done
cp "$m/kernel/drivers/net/virtio_net.ko" "$m/kernel/drivers/net/net_failover.ko" "$mt/kernel/drivers/net/"
mkdir -p "$mt/kernel/net/core"
cp "$m/kernel/net/core/failover.ko" "$mt/kernel/net/core/" 2>/dev/null || true
depmod -b "$tmp/modules" "$kver"

# --- initramfs ------------------------------------------------------------
log "initramfs"
ir=$tmp/initramfs
mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/newroot" "$ir/ro" "$ir/rw"
cp /bin/busybox "$ir/bin/busybox"
for a in sh mount umount mkdir insmod switch_root cat ls sleep findfs blkid echo grep; do
	ln -s busybox "$ir/bin/$a"
done
: >"$ir/lib/modules/load"
for mod in virtio_pci virtio_blk virtio_net crc32c_generic ext4 overlay; do
	modprobe -d "$tmp/modules" -S "$kver" --show-depends "$mod" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | awk '!seen[$0]++' | while read -r f; do
	cp "$f" "$ir/lib/modules/"
	echo "/lib/modules/$(basename "$f")" >>"$ir/lib/modules/load"
done
cp "$here/init" "$ir/init"
chmod 755 "$ir/init"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$tmp/initramfs.img"

# --- installer root ---------------------------------------------------------
log "debootstrap $suite: $packages"
rootfs=$tmp/root
# The downloaded packages are kept in a tarball keyed by the package list,
# so changing anything else here does not download them again.
tkey=$( { cat "$here/packages"; echo "$suite $mirror"; } | sha256sum | cut -c1-16)
tarball=$cache/debootstrap-$tkey.tgz
inc=$(echo "$packages" | tr ' ' ',')
if [ ! -f "$tarball" ]; then
	debootstrap --variant=minbase --include="$inc" --make-tarball="$tmp/db.tgz" \
		"$suite" "$tmp/db" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/debootstrap.log" >&2
		exit 1
	}
	mv "$tmp/db.tgz" "$tarball"
	rm -rf "$tmp/db"
fi
debootstrap --variant=minbase --include="$inc" --unpack-tarball="$tarball" \
	"$suite" "$rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
	tail -n 30 "$tmp/debootstrap.log" >&2
	exit 1
}
cp -a "$tmp/modules/lib/modules" "$rootfs/lib/"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
	"$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale "$rootfs"/usr/share/info
echo installer >"$rootfs/etc/hostname"
: >"$rootfs/etc/machine-id"
# root logs in with a key only; sshd uses the one host key made here.
rm -f "$rootfs"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C installer -f "$rootfs/etc/ssh/ssh_host_ed25519_key"
cat >"$rootfs/etc/ssh/sshd_config.d/rig.conf" <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowAgentForwarding yes
UseDNS no
CONF
mkdir -p "$rootfs/root/.ssh"
chmod 700 "$rootfs/root/.ssh"
# qemu user networking: the guest is 10.0.2.15, the host 10.0.2.2. The NIC
# driver is loaded by the initramfs and net.ifnames=0 keeps it eth0, so a
# static address needs no DHCP client nor systemd-networkd.
cat >"$rootfs/etc/systemd/system/rig-network.service" <<'UNIT'
[Unit]
Description=rig static network (qemu user networking)
DefaultDependencies=no
Before=network.target ssh.service
Wants=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2; echo nameserver 10.0.2.3 >/etc/resolv.conf'
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/rig-network.service "$rootfs/etc/systemd/system/multi-user.target.wants/rig-network.service"
# Units that only slow a throwaway VM down.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
	systemd-networkd-wait-online.service mdmonitor.service mdcheck_start.timer mdcheck_continue.timer \
	mdmonitor-oneshot.timer lvm2-monitor.service getty@tty1.service; do
	ln -sf /dev/null "$rootfs/etc/systemd/system/$u"
done
# Nix evaluates flakes as root, without a daemon or build users.
mkdir -p "$rootfs/etc/nix"
printf 'experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\n' >"$rootfs/etc/nix/nix.conf"
# A NixOS installer in the ways fleet checks (/etc/NIXOS, VARIANT_ID=installer),
# with the STAND-IN nixos-install kept next to this script (see its header).
touch "$rootfs/etc/NIXOS"
echo VARIANT_ID=installer >>"$rootfs/etc/os-release"
install -m 0755 "$here/nixos-install" "$rootfs/usr/local/sbin/nixos-install"
chroot "$rootfs" passwd -d root >/dev/null 2>&1 || true # console login for debugging only
size=$(du -sm "$rootfs" | cut -f1)
truncate -s "$((size * 13 / 10 + 200))M" "$tmp/installer.img"
mkfs.ext4 -q -L fleet-installer -d "$rootfs" "$tmp/installer.img"
cp "$rootfs/etc/ssh/ssh_host_ed25519_key.pub" "$tmp/installer_host_key.pub"

# --- publish ------------------------------------------------------------------
mkdir -p "$out"
mv "$tmp/vmlinuz" "$tmp/initramfs.img" "$tmp/installer.img" "$tmp/installer_host_key.pub" "$out/"
if [ -f "$tmp/vmlinux" ]; then mv "$tmp/vmlinux" "$out/"; fi
echo "$kver" >"$out/kernel-release"
echo "$packages" >"$out/packages"
end=$(date +%s)
echo "$((end - start))" >"$out/build-seconds"
touch "$out/done"
# Older builds and package tarballs are dead weight: keep only this one.
for old in "$cache"/installer-* "$cache"/debootstrap-*.tgz; do
	case $old in "$out" | "$tarball") ;; *) rm -rf "$old" ;; esac
done
log "built $out in $((end - start)) s (installer root ${size} MB)"
echo "$out"
