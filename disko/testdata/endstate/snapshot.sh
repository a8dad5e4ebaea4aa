# snapshot.sh ROOT DISK...: print the end state a disk layout left on DISK...
# (and on what is stacked on them: md arrays, LUKS mappings, LVM volumes)
# and under the mount root ROOT, normalized so that two runs of the same
# layout print the same text. Runs as root in bash on the rig VM, fed on
# stdin (`bash -s ROOT DISK...`); it changes nothing but a temporary
# mount of each btrfs filesystem's top level.
#
# Normalized away, as they legitimately differ between runs: filesystem,
# partition and disk UUIDs (a partition GUID is printed only when it is not
# a random version-4 GUID), LUKS salts, digests, epochs and PBKDF costs
# (benchmarked), dates, btrfs generations and subvolume IDs, zvol numbers
# (/dev/zd16 as zvol{POOL/NAME}), md minor numbers (md127 is printed as
# md{NAME}, NAME being the array's name without its homehost), dm minor numbers (dm-3 as dm{NAME}), the path a
# btrfs filesystem was mounted or scanned by (a /dev/disk/ link is printed
# as the node it points to), and the order of lines where the order carries
# no meaning (sections are sorted).
#
# Types come from blkid -p (the bytes on the devices), never from udev's
# database (lsblk's FSTYPE), which lags behind whoever did not settle udev
# after the last mkfs. Every program started costs ~0.1-0.5 s under qemu's
# emulation: the md, LVM, LUKS and btrfs tools run only when such devices
# exist.
set -u
root=$1
shift
disks=("$@")

# Every block device on the disks, each once, probed by blkid. blkid -p
# stops at the first of several devices it finds nothing on: one call each.
declare -A fstype pttype blkline
devs=()
while read -r name; do
	[ -n "${fstype[$name]+x}" ] && continue
	devs+=("$name")
	fstype[$name]= pttype[$name]= line=
	while IFS='=' read -r k v; do
		case $k in
		TYPE) fstype[$name]=$v ;;
		PTTYPE) pttype[$name]=$v ;;
		esac
		case $k in
		TYPE | SEC_TYPE | VERSION | LABEL | PTTYPE | USAGE | PART_ENTRY_SCHEME | PART_ENTRY_NAME | PART_ENTRY_TYPE | \
			PART_ENTRY_FLAGS | PART_ENTRY_NUMBER | PART_ENTRY_OFFSET | PART_ENTRY_SIZE)
			line="$line $k=$v"
			;;
		esac
	done < <(blkid -p -o export "$name" 2>/dev/null)
	blkline[$name]=$(sed -E 's/PART_ENTRY_NAME=zfs-[0-9a-f]{16}/PART_ENTRY_NAME=zfs-(random)/' <<<"${line:- (nothing)}")
done < <(lsblk -nrpo NAME "${disks[@]}")
has() { # has TYPE: is there a device of that blkid TYPE
	local d
	for d in "${devs[@]}"; do [ "${fstype[$d]}" = "$1" ] && return 0; done
	return 1
}
mds=()
for d in "${devs[@]}"; do [[ $d =~ ^/dev/md[0-9]+$ ]] && mds+=("$d"); done

# Kernel names that depend on creation order, and what to print instead.
normsed=(-e 's/^Partition unique GUID: [0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-4[0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}$/Partition unique GUID: (random)/')
if [ ${#mds[@]} -gt 0 ]; then
	links=(/dev/md/*)
	if [ -e "${links[0]}" ]; then
		mapfile -t targets < <(realpath "${links[@]}")
		for i in "${!links[@]}"; do
			name=${links[$i]#/dev/md/}
			normsed+=(-e "s#${targets[$i]#/dev/}([^0-9]|\$)#md{${name#*:}}\\1#g")
		done
	fi
fi
for dm in /sys/block/dm-*/dm/name; do
	[ -e "$dm" ] || continue
	read -r name <"$dm"
	k=${dm#/sys/block/}
	normsed+=(-e "s#${k%%/*}([^0-9]|\$)#dm{$name}\\1#g")
done

# zvols (zd0, zd16, ... in creation order) as zvol{POOL/NAME}.
while read -r link; do
	z=$(realpath "$link")
	normsed+=(-e "s#${z}([^0-9]|\$)#zvol{${link#/dev/zvol/}}\\1#g")
done < <(find /dev/zvol -type l 2>/dev/null | grep -v -- '-part[0-9]*$' | sort -r)

section() { echo; echo "== $*"; }

# mbr decodes the four MBR partition entries (a protective or hybrid MBR
# on GPT disks) and the boot signature.
mbr() {
	od -An -tu1 -v -j446 -N66 "$1" | awk '
		{ for (i = 1; i <= NF; i++) b[n++] = $i }
		END {
			for (i = 0; i < 4; i++) {
				o = i * 16
				if (b[o+4] == 0) continue
				start = b[o+8] + b[o+9]*256 + b[o+10]*65536 + b[o+11]*16777216
				sz = b[o+12] + b[o+13]*256 + b[o+14]*65536 + b[o+15]*16777216
				printf "mbr entry %d: boot=0x%02x type=0x%02x start=%d sectors=%d\n", i+1, b[o], b[o+4], start, sz
			}
			printf "mbr signature: %02x%02x\n", b[64], b[65]
		}'
}

# gpt prints sgdisk -p without the disk GUID, and sgdisk -i of each
# partition. A table zpool create made on a whole disk (its partition
# named zfs-<16 random hex digits>) has random names and GUIDs of
# another form: they are printed as (random).
gpt() {
	local l n nums=() out
	out=$(
		while read -r l; do
			[[ $l == Disk\ identifier* ]] && continue
			echo "$l"
			[[ $l =~ ^([0-9]+)\  ]] && nums+=("${BASH_REMATCH[1]}")
		done < <(sgdisk -p "$1" 2>&1)
		for n in "${nums[@]}"; do
			echo "-- partition $n"
			sgdisk -i "$n" "$1" 2>&1 | grep .
		done
	)
	if grep -qE "zfs-[0-9a-f]{16}" <<<"$out"; then
		sed -E "s/zfs-[0-9a-f]{16}/zfs-(random)/; s/^(Partition unique GUID:) .*/\1 (random)/" <<<"$out"
	else
		echo "$out"
	fi
}

# files lists everything under a directory: type, mode, size of files, path.
files() {
	# (a btrfs top level mounted under the root holds the root's own
	# subvolume: find says "File system loop detected" and skips it)
	find "$1" -mindepth 1 \( -type f -printf '%y %m %s %P\n' \) -o \( ! -type f -printf '%y %m %P\n' \) 2>/dev/null | sort
}

{
	for d in "${devs[@]}"; do
		pt=${pttype[$d]}
		[ -n "$pt" ] || continue
		section "partition table $d ($pt)"
		case $pt in
		gpt) gpt "$d" ;;
		dos) sfdisk -d "$d" 2>&1 | grep -v '^label-id:' ;;
		*) echo "unexpected table type $pt" ;;
		esac
		mbr "$d"
	done

	section "blkid -p (no UUIDs)"
	for d in "${devs[@]}"; do echo "$d:${blkline[$d]}"; done | sort

	section "lsblk (name parent type bytes)"
	lsblk -nbr -o NAME,PKNAME,TYPE,SIZE "${disks[@]}" | sort -u

	section "mounts under $root (target source fstype vfs-options fs-options mode owner)"
	mapfile -t mounts < <(findmnt -rn -o TARGET,SOURCE,FSTYPE,VFS-OPTIONS,FS-OPTIONS | awk -v r="$root" '$1 == r || index($1, r "/") == 1' | sort)
	for m in "${mounts[@]}"; do
		read -r target src rest <<<"$m"
		dev=${src%%\[*} # btrfs: /dev/vda2[/subvolume]
		[[ $dev == /dev/disk/* ]] && src=$(realpath "$dev")${src#"$dev"}
		echo "$target $src $rest $(stat -c '%a %U:%G' "$(printf '%b' "$target")")"
	done

	section "files under $root (type mode [bytes] path)"
	[ ${#mounts[@]} -gt 0 ] && files "$root"

	section "swaps (file type bytes priority)"
	tail -n +2 /proc/swaps | awk '{print $1, $2, $3 * 1024, $5}' | sort

	if [ ${#mds[@]} -gt 0 ]; then
		section "md arrays"
		for d in "${mds[@]}"; do
			echo "-- $d"
			# resync while one is pending (wipe.sh holds resyncs still),
			# idle for an array made with --assume-clean, none for raid0.
			action=none
			f=/sys/block/${d#/dev/}/md/sync_action
			[ -e "$f" ] && read -r action <"$f"
			echo "sync action: $action"
			mdadm --detail "$d" 2>&1 | awk '
				/^ *(Version|Raid Level|Array Size|Used Dev Size|Raid Devices|Total Devices|Layout|Chunk Size|Consistency Policy|Name) :/ { sub(/^ +/, ""); gsub(/ +/, " "); print; next }
				/Number +Major +Minor +RaidDevice/ { p = 1; next }
				p && NF { print "member", $4, $(NF-2), $(NF-1), $NF }'
		done
	fi

	if has LVM2_member; then
		section "lvm"
		pvs --noheadings --units b --nosuffix -o pv_name,vg_name,pv_fmt,pv_size 2>&1 | sed -E 's/ +/ /g; s/^ //' | sort
		vgs --noheadings --units b --nosuffix -o vg_name,pv_count,lv_count,vg_size,vg_extent_size 2>&1 | sed -E 's/ +/ /g; s/^ //' | sort
		# lv_attr's first letter I (an image not in sync yet) depends on timing.
		lvs -a --noheadings --units b --nosuffix -o lv_name,vg_name,lv_size,lv_attr,pool_lv,segtype,stripes 2>&1 |
			sed -E 's/ +/ /g; s/^ //' | awk '{ sub(/^I/, "i", $4); print }' | sort
	fi

	if has crypto_LUKS; then
		section "luks"
		for d in "${devs[@]}"; do
			[ "${fstype[$d]}" = crypto_LUKS ] || continue
			echo "-- $d"
			cryptsetup luksDump "$d" 2>&1 | grep -E '^(Version|Label|Subsystem|Flags):|^\s+(offset|length|cipher|sector|Key|Cipher key|PBKDF|Priority|AF stripes|Area length):|^\s+[0-9]+: ' | sed -E 's/[[:space:]]+/ /g; s/^ //'
		done
		for d in "${devs[@]}"; do
			[[ $d == /dev/mapper/* ]] || continue
			st=$(cryptsetup status "${d#/dev/mapper/}" 2>/dev/null) || continue
			grep -q 'type: *LUKS' <<<"$st" || continue
			echo "-- open $d"
			grep -E '^\s+(type|cipher|keysize|device|sector size|offset|size|mode|flags):' <<<"$st" | sed -E 's/[[:space:]]+/ /g; s/^ //'
		done
	fi

	if has zfs_member; then
		# Pools by name; vdevs by the nodes their paths resolve to (-PL);
		# properties set on the pool and its datasets (source local), and
		# the encryption ones zfs fixes at creation (source -); no guids,
		# dates or space used.
		section "zfs"
		for p in $(zpool list -H -o name | sort); do
			echo "-- pool $p"
			zpool list -H -o name,health,altroot "$p"
			zpool status -PL "$p" | awk '/^config:/ { c = 1; next } /^errors:/ { c = 0 } c && NF && $1 != "NAME" { print $1, $2 }'
			zpool get -H -o property,value,source all "$p" | awk -F'\t' '$3 == "local" { print "pool " $1 "=" $2 }' | sort
			zfs list -H -r -t all -o name,type,mountpoint,canmount,mounted,volsize "$p" | sort
			zfs get -H -r -t all -o name,property,value,source all "$p" |
				awk -F'\t' '$4 == "local" || ($4 == "-" && $2 ~ /^(encryption|keyformat|encryptionroot|keystatus|volblocksize)$/) { print $1, $2 "=" $3 }' | sort
		done
	fi

	if has btrfs; then
		section "btrfs (top level of each filesystem)"
		seen=" "
		for d in "${devs[@]}"; do
			[ "${fstype[$d]}" = btrfs ] || continue
			# One filesystem may span devices: its lowest devid speaks for it.
			show=()
			while read -r k n rest; do
				case $k in
				Label:) show+=("Label: ${n}") ;;        # 'label' or none; uuid dropped
				Total) show+=("Total devices ${rest%% *}") ;; # no "FS bytes used"
				devid) show+=("devid $n $(realpath "${rest##* path }")") ;;
				esac
			done < <(btrfs filesystem show "$d" 2>&1)
			first=${show[2]:-}
			first=${first#devid * }
			case $seen in *" $first "*) continue ;; esac
			seen="$seen$first "
			echo "-- $first"
			printf '%s\n' "${show[@]}"
			tmp=$(mktemp -d /tmp/endstate-btrfs.XXXXXX)
			if mount -t btrfs -o subvolid=5 "$d" "$tmp"; then
				btrfs filesystem df "$tmp" 2>&1 | sed -E 's/:.*//' | sort
				echo "default subvolume: $(btrfs subvolume get-default "$tmp" | sed -E 's/^ID [0-9]+ (gen [0-9]+ )?//')"
				btrfs subvolume list "$tmp" 2>&1 | sed -E 's/^.* path /subvolume /' | sort
				files "$tmp"
				# Swapfiles: NOCOW attribute and swap signature.
				while read -r f; do
					echo "file ${f#"$tmp"/}: attrs $(lsattr "$f" | awk '{print $1}') blkid $(blkid -p -o value -s TYPE "$f")"
				done < <(find "$tmp" -type f -size +1M | sort)
				umount "$tmp"
			fi
			rmdir "$tmp"
		done
	fi
} 2>&1 | sed -E "${normsed[@]}"
