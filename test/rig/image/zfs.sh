# image/zfs.sh (sourced by build.sh): ZFS for the rig's kernel, from
# Debian's contrib zfs-dkms and zfsutils-linux (OpenZFS 2.1.11 in
# bookworm), x86_64 only.
#
# build_zfs OUT builds the modules ONCE per kernel, natively on the host:
# a minbase chroot (main and contrib) gets the kernel's linux-headers
# (from bookworm-security or -updates, where Debian's current kernel
# lives) and zfs-dkms, whose postinst builds the modules for every kernel
# with headers. Measured cold here: debootstrap 30 s, apt-get install with
# the dkms build 244 s (2 cores, lightly loaded); 13 to 22 minutes in all
# while other builds and VMs shared the 2 cores. Out: OUT/modules/*.ko, OUT/debs/*.deb
# (the userland and its libraries, plus a stand-in package that provides
# python3, which zfsutils-linux depends on only for arcstat and friends).
#
# zfs_apply ZDIR adds that to the image's root in $r: the debs with dpkg,
# the modules under /lib/modules/KVER/updates/zfs, and the hostid the
# NixOS installers set (networking.hostId = "8425e349", in nixpkgs'
# profiles/base.nix and nixos-images' zfs-minimal.nix). As on the NixOS
# installers, nothing imports or mounts pools at boot: Debian's
# zfs-import-scan (which would import every pool it finds), import-cache,
# mount, share and load-module units are masked; `modprobe zfs` loads the
# module (zpool does not).

build_zfs() {
	zout=$1
	z=$tmp/zfs-root
	zkver=${kpkg#linux-image-}
	log "zfs: debootstrap $suite (main, contrib)"
	debootstrap --variant=minbase --components=main,contrib "$suite" "$z" "$mirror" >"$tmp/zfs-debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/zfs-debootstrap.log" >&2
		exit 1
	}
	cat >"$z/etc/apt/sources.list" <<SRC
deb $mirror $suite main contrib
deb $mirror $suite-updates main contrib
deb $security $suite-security main contrib
SRC
	printf '#!/bin/sh\nexit 101\n' >"$z/usr/sbin/policy-rc.d"
	chmod 755 "$z/usr/sbin/policy-rc.d"
	mount -t proc proc "$z/proc"
	log "zfs: linux-headers-$zkver, zfs-dkms (the module build takes minutes)"
	if ! chroot "$z" apt-get update -qq >"$tmp/zfs-apt.log" 2>&1 ||
		! chroot "$z" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"linux-headers-$zkver" zfs-dkms zfsutils-linux >>"$tmp/zfs-apt.log" 2>&1; then
		umount "$z/proc"
		tail -n 40 "$tmp/zfs-apt.log" >&2
		die "zfs: the dkms build failed (log above)"
	fi
	umount "$z/proc"
	mkdir -p "$zout/modules" "$zout/debs"
	cp "$z/lib/modules/$zkver/updates/dkms/"*.ko "$zout/modules/"
	[ -f "$zout/modules/zfs.ko" ] || die "zfs: dkms built no zfs.ko for $zkver"
	(cd "$zout/debs" && chroot "$z" sh -c 'cd /tmp && apt-get -o APT::Sandbox::User=root download -qq zfsutils-linux libzfs4linux libzpool5linux libnvpair3linux libuutil3linux libtirpc3 libtirpc-common' &&
		mv "$z"/tmp/*.deb .)
}

zfs_apply() {
	zd=$1
	log "zfs: userland and modules"
	mkdir -p "$r/tmp/rig-zfs"
	cp "$zd"/debs/*.deb "$r/tmp/rig-zfs/"
	chroot "$r" sh -c 'dpkg -i /tmp/rig-zfs/*.deb' >"$tmp/zfs-dpkg.log" 2>&1 || {
		tail -n 30 "$tmp/zfs-dpkg.log" >&2
		die "zfs: dpkg -i failed"
	}
	rm -rf "$r/tmp/rig-zfs"
	mkdir -p "$r/lib/modules/$kver/updates/zfs"
	cp "$zd"/modules/*.ko "$r/lib/modules/$kver/updates/zfs/"
	for u in zfs-import-scan.service zfs-import-cache.service zfs-mount.service zfs-share.service \
		zfs-load-module.service zfs-volume-wait.service zfs-zed.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done
	printf '\111\343\045\204' >"$r/etc/hostid"
}
