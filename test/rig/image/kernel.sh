# image/kernel.sh (sourced by build.sh): Debian's kernel for the guest, a
# trimmed module tree and a busybox initramfs running ../init.
#
# In: $arch, $debarch, $kpkg, $tmp. build_kernel OUT writes into OUT:
#   vmlinux   x86_64: the uncompressed kernel (boots ~5 s faster under TCG
#             than the bzImage), when it can be extracted; else
#   vmlinuz   the kernel as packaged (x86_64 bzImage)
#   Image     aarch64: the uncompressed arm64 Image (Debian packages it
#             gzipped; the firmware loads it as an EFI application)
#   initramfs.img, kernel-release, modules/lib/modules/KVER

build_kernel() {
	kout=$1
	w=$tmp/kernel
	mkdir -p "$w"
	log "kernel $kpkg ($debarch)"
	(cd "$w" && apt-get -o APT::Sandbox::User=root download "$kpkg:$debarch" >/dev/null)
	dpkg -x "$w"/linux-image-*.deb "$w/k"
	kver=$(ls "$w/k/lib/modules")
	case $arch in
	x86_64)
		cp "$w/k/boot/vmlinuz-$kver" "$kout/vmlinuz"
		# extract-vmlinux is not installed here: find the xz stream.
		off=$(LC_ALL=C grep -aobUP '\xfd7zXZ\x00' "$kout/vmlinuz" | head -n1 | cut -d: -f1)
		if [ -n "$off" ] && tail -c +"$((off + 1))" "$kout/vmlinuz" | xz -dc --single-stream >"$w/vmlinux" 2>/dev/null &&
			head -c4 "$w/vmlinux" | grep -q ELF; then
			mv "$w/vmlinux" "$kout/vmlinux"
		else
			log "no uncompressed vmlinux, booting vmlinuz"
		fi
		;;
	aarch64)
		if gzip -t "$w/k/boot/vmlinuz-$kver" 2>/dev/null; then
			gzip -dc "$w/k/boot/vmlinuz-$kver" >"$kout/Image"
		else
			cp "$w/k/boot/vmlinuz-$kver" "$kout/Image"
		fi
		;;
	esac

	# The trimmed module tree: what an installer needs for disks,
	# filesystems, device-mapper, md, crypto and virtio; NVMe and SD/MMC
	# (sdhci-pci) for the NVMe drive and SD card a VM may have
	# (Options.NVMe, Options.SD); dax, which dm-mod needs where it is a
	# module (arm64; built in on amd64): without it no device-mapper, so no
	# LVM or LUKS.
	m=$w/k/lib/modules/$kver
	mt=$kout/modules/lib/modules/$kver
	mkdir -p "$mt/kernel/drivers/net" "$mt/kernel/net/core"
	cp "$m"/modules.order "$m"/modules.builtin* "$mt/"
	cp -a "$m/kernel/fs" "$m/kernel/lib" "$m/kernel/crypto" "$m/kernel/arch" "$m/kernel/block" "$mt/kernel/"
	for d in virtio block md char/hw_random nvdimm scsi/virtio_scsi.ko net/virtio_net.ko net/net_failover.ko nvme/host mmc dax; do
		if [ -e "$m/kernel/drivers/$d" ]; then
			mkdir -p "$mt/kernel/drivers/$(dirname "$d")"
			cp -a "$m/kernel/drivers/$d" "$mt/kernel/drivers/$(dirname "$d")/"
		fi
	done
	if [ -e "$m/kernel/net/core/failover.ko" ]; then cp "$m/kernel/net/core/failover.ko" "$mt/kernel/net/core/"; fi
	depmod -b "$kout/modules" "$kver"

	# The initramfs: a static busybox of the guest's architecture.
	ir=$w/initramfs
	mkdir -p "$ir/bin" "$ir/lib/modules" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/newroot" "$ir/ro" "$ir/rw"
	if [ "$debarch" = "$(dpkg --print-architecture)" ]; then
		cp /bin/busybox "$ir/bin/busybox"
	else
		(cd "$w" && apt-get -o APT::Sandbox::User=root download "busybox-static:$debarch" >/dev/null)
		dpkg -x "$w"/busybox-static_*.deb "$w/bb"
		cp "$w/bb/bin/busybox" "$ir/bin/busybox"
	fi
	for a in sh mount umount mkdir insmod switch_root cat ls sleep findfs blkid echo grep; do
		ln -s busybox "$ir/bin/$a"
	done
	: >"$ir/lib/modules/load"
	for mod in virtio_pci virtio_blk virtio_net crc32c_generic ext4 overlay; do
		# Built-in modules print "builtin NAME" and are skipped.
		modprobe -d "$kout/modules" -S "$kver" --show-depends "$mod" 2>/dev/null | sed -n 's/^insmod \([^ ]*\).*/\1/p' || true
	done | awk '!seen[$0]++' | while read -r f; do
		cp "$f" "$ir/lib/modules/"
		echo "/lib/modules/$(basename "$f")" >>"$ir/lib/modules/load"
	done
	cp "$here/init" "$ir/init"
	chmod 755 "$ir/init"
	(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$kout/initramfs.img"
	echo "$kver" >"$kout/kernel-release"
}
