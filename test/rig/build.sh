#!/bin/sh
# build.sh: build (or find in the cache) a rig installer: kernel, initramfs
# and live-installer image for one architecture and one profile.
#
# Usage: test/rig/build.sh [--arch x86_64|aarch64] [--profile NAME] [--zfs]
#
#   --arch     the guest's architecture (default x86_64)
#   --profile  which installer the image reproduces: a file in profiles/
#              (debian, the default; iso; kexec)
#   --zfs      the variant with ZFS: zfs.ko built once for the rig's kernel,
#              and zfsutils-linux (Debian contrib)
#
# The last line printed on stdout is the image's directory.
#
# The cache, $FLEET_RIG_CACHE (default /var/cache/fleet/rig, outside the
# clone), is shared by every clone and profile on the machine. A build is
# made of stages, each cached under $cache/ARCH/ by a hash of its own
# inputs, so a change rebuilds only what depends on it:
#
#   debootstrap-KEY.tgz  the Debian packages of every profile (the union
#                        in ./packages), downloaded once     (packages)
#   kernel-KEY/          Debian's kernel, a trimmed module tree and the
#                        busybox initramfs                   (image/kernel.sh, init)
#   root-KEY/            the unpacked root every profile starts from
#                                                            (image/root.sh)
#   zfs-KEY/             zfs.ko for that kernel and the ZFS userland debs,
#                        x86_64 only                         (image/zfs.sh)
#   PROFILE[-zfs]-KEY/   the image: a copy of the root configured by
#                        image/common.sh and profiles/PROFILE.sh (with
#                        the stand-in nixos-install), in seconds
#
# Pruning: a stage's other builds (same kind, same architecture, another
# key) are removed once unused for $FLEET_RIG_KEEP_DAYS days (default 7:
# each use touches its "used" stamp), never while a VM runs from one (the
# rig holds a shared flock on its "lock" file). Other profiles' builds are
# never touched, nor are other clones' current ones.
#
# Needs root (debootstrap, chroot), debootstrap, apt-get, dpkg, kmod, cpio,
# busybox-static, mkfs.ext4, ssh-keygen, flock; for aarch64 also
# qemu-user-static (binfmt_misc is mounted and qemu-aarch64 registered if
# need be) and the arm64 architecture in dpkg (added if need be); network
# access to the Debian mirror on a cold cache.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
arch=x86_64 profile=debian zfs=
while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=$2; shift 2 ;;
	--profile) profile=$2; shift 2 ;;
	--zfs) zfs=1; shift ;;
	*) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
case $arch in
x86_64) debarch=amd64 ;;
aarch64) debarch=arm64 ;;
*) echo "build.sh: unknown architecture $arch (x86_64, aarch64)" >&2; exit 2 ;;
esac
if [ ! -f "$here/profiles/$profile.sh" ]; then
	echo "build.sh: unknown profile $profile (known: $(cd "$here/profiles" && ls | sed 's/\.sh$//' | tr '\n' ' '))" >&2
	exit 2
fi
if [ -n "$zfs" ] && [ "$arch" != x86_64 ]; then
	echo "build.sh: the zfs variant is built for x86_64 only (dkms under emulation would take hours)" >&2
	exit 2
fi

cache=${FLEET_RIG_CACHE:-/var/cache/fleet/rig}
keep_days=${FLEET_RIG_KEEP_DAYS:-7}
suite=bookworm
mirror=${FLEET_RIG_MIRROR:-http://deb.debian.org/debian}
security=${FLEET_RIG_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
log() { echo "rig build: $*" >&2; }
die() { echo "rig build: $*" >&2; exit 1; }
hash() { sha256sum | cut -c1-16; }
# fn FILE NAME: the source of shell function NAME in FILE. A stage's key
# hashes its function, not the whole file: comments and the other
# functions there do not rebuild it (the zfs stage costs minutes).
fn() { sed -n "/^$2() {\$/,/^}\$/p" "$1"; }

mkdir -p "$cache"
# --- foreign architecture -------------------------------------------------
if [ "$debarch" != "$(dpkg --print-architecture)" ]; then
	exec 8>"$cache/setup.lock"
	flock 8
	# debootstrap's second stage and the profiles' chroots run the guest's
	# binaries through qemu-user-static, registered with binfmt_misc.
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
	fi
	if [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$arch" ]; then
		conf=/usr/lib/binfmt.d/qemu-$arch.conf
		[ -f "$conf" ] || die "$conf missing: install qemu-user-static"
		grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register || die "cannot register $conf"
		log "registered qemu-$arch with binfmt_misc"
	fi
	# Debian's kernel and busybox for the guest come from the mirror, as
	# packages of that architecture.
	if ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
		log "dpkg --add-architecture $debarch"
		dpkg --add-architecture "$debarch"
	fi
	if ! apt-cache show "linux-image-$debarch:$debarch" >/dev/null 2>&1; then
		apt-get update -qq >&2
	fi
	exec 8>&-
fi

# --- inputs -----------------------------------------------------------------
kmeta=linux-image-$debarch:$debarch
kpkg=$(apt-cache depends "$kmeta" 2>/dev/null | sed -n "s/^ *Depends: \(linux-image-[0-9][^:]*-$debarch\)\(:$debarch\)\{0,1\}$/\1/p" | head -n1)
[ -n "$kpkg" ] || die "cannot resolve $kmeta to a kernel package (apt-get update?)"
kver_pkg=$(apt-cache policy "$kpkg:$debarch" | sed -n 's/^ *Candidate: //p')
packages=$(grep -v '^#' "$here/packages" | tr '\n' ' ' | sed 's/ *$//;s/  */ /g')

tkey=$( { cat "$here/packages"; echo "$suite $mirror $debarch"; } | hash)
kkey=$( { fn "$here/image/kernel.sh" build_kernel; cat "$here/init"; echo "$arch $kpkg $kver_pkg"; } | hash)
rkey=$( { fn "$here/image/root.sh" build_root; echo "$arch $tkey"; } | hash)
# A foreign architecture's root is made from the native one (see
# build_root_foreign in image/root.sh): its stages and keys as well.
ndebarch=$(dpkg --print-architecture)
if [ "$debarch" != "$ndebarch" ]; then
	narch=$(uname -m)
	ntkey=$( { cat "$here/packages"; echo "$suite $mirror $ndebarch"; } | hash)
	nrkey=$( { fn "$here/image/root.sh" build_root; echo "$narch $ntkey"; } | hash)
	rkey=$( { fn "$here/image/root.sh" build_root_foreign; echo "$arch $tkey $nrkey"; } | hash)
fi
zkey=
if [ -n "$zfs" ]; then
	zkey=$( { fn "$here/image/zfs.sh" build_zfs; echo "$arch $suite $mirror $security $kpkg $kver_pkg"; } | hash)
fi
name=$profile${zfs:+-zfs}
ikey=$( {
	cat "$0" "$here/image/common.sh" "$here/nixos-install" "$here/profiles/$profile.sh" "$here/image/nixos.sh"
	if [ -n "$zfs" ]; then fn "$here/image/zfs.sh" zfs_apply; fi
	echo "$kkey $rkey $zkey"
} | hash)

dir=$cache/$arch
out=$dir/$name-$ikey
tarball=$dir/debootstrap-$tkey.tgz
kdir=$dir/kernel-$kkey
rdir=$dir/root-$rkey
zdir=$dir/zfs-$zkey

# used marks a build as used now (the pruning clock).
used() { touch "$1/used" 2>/dev/null || true; }

if [ -f "$out/done" ]; then
	used "$out"
	echo "$out"
	exit 0
fi

# Each stage, and this image, is built by one process at a time (a flock
# on its name.lock): builds of other stages and profiles go on meanwhile.
mkdir -p "$dir"
exec 9>"$out.lock"
flock 9
if [ -f "$out/done" ]; then # built by someone else while we waited
	used "$out"
	echo "$out"
	exit 0
fi

start=$(date +%s)
tmp=$dir/tmp-$ikey-$$
rm -rf "$tmp"
mkdir -p "$tmp"
# unmount_under DIR: unmount what a killed build left mounted below DIR
# (debootstrap's and the zfs chroot's /proc), before anything removes it.
unmount_under() {
	for m in $(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
}
stage_tmp=
cleanup() {
	unmount_under "$tmp"
	rm -rf --one-file-system "$tmp"
	if [ -n "$stage_tmp" ]; then
		unmount_under "$stage_tmp"
		rm -rf --one-file-system "$stage_tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stage DIR FUNCTION: run FUNCTION into DIR unless DIR is built; a stage
# builds into a temporary directory renamed into place when complete.
stage() {
	if [ -f "$1/done" ]; then
		used "$1"
		return 0
	fi
	stage_tmp=$1.tmp
	(
		exec 7>"$1.lock"
		flock 7
		if [ -f "$1/done" ]; then exit 0; fi
		unmount_under "$1.tmp"
		rm -rf --one-file-system "$1.tmp"
		mkdir -p "$1.tmp"
		s=$(date +%s)
		"$2" "$1.tmp"
		echo "$(($(date +%s) - s))" >"$1.tmp/build-seconds"
		touch "$1.tmp/done" "$1.tmp/used"
		rm -rf "$1"
		mv "$1.tmp" "$1"
		log "$(basename "$1") built in $(cat "$1/build-seconds")s"
	)
	stage_tmp=
	used "$1"
}

. "$here/image/kernel.sh"
. "$here/image/root.sh"
. "$here/image/common.sh"
. "$here/image/zfs.sh"
. "$here/profiles/$profile.sh"

# --- stages -------------------------------------------------------------------
(
	exec 7>"$tarball.lock"
	flock 7
	if [ ! -f "$tarball" ]; then make_tarball "$tarball"; fi
)
touch "$tarball.used"
stage "$kdir" build_kernel
if [ "$debarch" = "$ndebarch" ]; then
	stage "$rdir" build_root
else
	ntarball=$cache/$narch/debootstrap-$ntkey.tgz
	nrdir=$cache/$narch/root-$nrkey
	(
		tarball=$ntarball debarch=$ndebarch
		mkdir -p "$cache/$narch"
		(
			exec 7>"$tarball.lock"
			flock 7
			if [ ! -f "$tarball" ]; then make_tarball "$tarball"; fi
		)
		touch "$tarball.used"
		stage "$nrdir" build_root
	)
	stage "$rdir" build_root_foreign
fi
if [ -n "$zfs" ]; then stage "$zdir" build_zfs; fi
kver=$(cat "$kdir/kernel-release")

# --- the profile's image ------------------------------------------------------
log "image $name: the root, image/common.sh, then profiles/$profile.sh"
r=$tmp/root
cp -a "$rdir/root" "$r"
cp -a "$kdir/modules/lib/modules" "$r/lib/"
common_apply
profile_apply
if [ -n "$zfs" ]; then zfs_apply "$zdir"; fi
depmod -b "$r" "$kver"
# The host keys the profile asked for (made now, so every image has its
# own), the rig's control channel key (see image/root.sh).
ssh-keygen -q -t ed25519 -N '' -C rig-control -f "$r/etc/rig/control_host_key"
size=$(du -sm "$r" | cut -f1)
truncate -s "$((size * 13 / 10 + 200))M" "$tmp/installer.img"
mkfs.ext4 -q -L fleet-installer -d "$r" "$tmp/installer.img"

# --- publish --------------------------------------------------------------------
img=$tmp/out
mkdir -p "$img"
mv "$tmp/installer.img" "$img/"
for f in vmlinux vmlinuz Image initramfs.img kernel-release; do
	[ -f "$kdir/$f" ] && { ln "$kdir/$f" "$img/$f" 2>/dev/null || cp "$kdir/$f" "$img/$f"; }
done
for k in "$r"/etc/ssh/ssh_host_*_key.pub; do
	[ -f "$k" ] && cp "$k" "$img/installer_$(basename "$k" | sed 's/^ssh_//')"
done
cp "$r/etc/rig/control_host_key.pub" "$img/control_host_key.pub"
host_keys=$(cat "$r/etc/ssh/sshd_config" "$r"/etc/ssh/sshd_config.d/*.conf 2>/dev/null |
	sed -n 's|^HostKey /etc/ssh/ssh_host_\(.*\)_key$|\1|p' | awk '!seen[$0]++' | tr '\n' ' ')
# The rig sets passwords (Options.Passwords) in a copy of this file that
# it writes into the overlay, as `passwd` at the console would.
install -m 0600 "$r/etc/shadow" "$img/shadow"
cat >"$img/image.conf" <<CONF
arch=$arch
profile=$profile
zfs=${zfs:-0}
kernel_release=$kver
kernel_package=$kpkg $kver_pkg
login=$profile_login
host_keys=$host_keys
root_keys=$profile_root_keys
CONF
echo "$packages" >"$img/packages"
echo "$(($(date +%s) - start))" >"$img/build-seconds"
touch "$img/done" "$img/used" "$img/lock"
rm -rf "$out"
mv "$img" "$out"
log "built $out in $(cat "$out/build-seconds") s (root ${size} MB)"

# --- prune ----------------------------------------------------------------------
. "$here/image/prune.sh"
k=$key_glob
prune "$dir/$name-$k" "$out"
prune "$dir/kernel-$k" "$kdir"
prune "$dir/root-$k" "$rdir"
prune "$dir/debootstrap-$k.tgz" "$tarball"
if [ -n "$zfs" ]; then prune "$dir/zfs-$k" "$zdir"; fi
# Builds of the single-profile layout before this one (installer-KEY):
# the debian profile's former self.
if [ "$arch" = x86_64 ] && [ "$profile" = debian ] && [ -z "$zfs" ]; then
	prune "$cache/installer-*" ""
	prune "$cache/debootstrap-*.tgz" ""
fi
echo "$out"
