# wipe.sh ROOT DISK...: take down whatever a layout left on DISK... and
# under ROOT on the rig VM, and zero the disks, so that the next layout
# starts from blank disks as on a fresh VM. Runs as root in bash, fed on
# stdin (`bash -s ROOT DISK...`). Only the rig's throwaway target disks are
# ever passed; the VM has no md, LVM or dm devices of its own.
set -u
# md resyncs and recoveries in the background eat the emulated CPU, and
# how far they got would show in the end state: hold them still. An array
# made without --assume-clean stays "resyncing" (raid1: its members show
# as in sync) or "recovering" (raid5: a member shows as rebuilding).
modprobe md_mod || exit 1
echo 1 >/proc/sys/dev/raid/speed_limit_min
echo 1 >/proc/sys/dev/raid/speed_limit_max
root=$1
shift
disks=("$@")
tree() { lsblk -nrpo NAME "${disks[@]}" 2>/dev/null | sort -u; }

umount -R "$root" 2>/dev/null
swapoff -a
# Pools (on the disks, or on LVM, md or LUKS on them) before what is
# under them; only on the ZFS rig, which has zpool (and loads zfs on
# demand only: NixOS's installer has it loaded, disko's scripts expect it).
if command -v zpool >/dev/null; then
	modprobe zfs || exit 1
	for p in $(zpool list -H -o name 2>/dev/null); do
		zpool destroy -f "$p" || exit 1
	done
fi
# Any other mount of the disks' devices (a btrfs top level mounted
# somewhere, a failed run's temporary mount).
for d in $(tree); do
	umount -A "$d" 2>/dev/null
done
# Stacked either way round (md on LVM volumes, LVM on md on LUKS): each
# pass takes down the top layers.
for _ in 1 2 3; do
	vgchange -an >/dev/null 2>&1
	dmsetup remove_all >/dev/null 2>&1
	mdadm --stop --scan >/dev/null 2>&1
done
for d in "${disks[@]}"; do
	out=$(blkdiscard -f -z "$d" 2>&1) || { echo "wipe: $out" >&2; exit 1; }
done
for d in "${disks[@]}"; do
	blockdev --rereadpt "$d" || exit 1
done
btrfs device scan --forget >/dev/null 2>&1
rm -f /etc/lvm/devices/system.devices /etc/lvm/backup/* /etc/lvm/archive/*
udevadm settle --timeout 60
left=$(lsblk -nrpo NAME "${disks[@]}" | sort -u | grep -vxF -f <(printf '%s\n' "${disks[@]}"))
if [ -n "$left" ]; then
	echo "wipe: still there after zeroing: $left" >&2
	exit 1
fi
if mountpoint -q "$root"; then
	echo "wipe: $root still mounted" >&2
	exit 1
fi
exit 0
