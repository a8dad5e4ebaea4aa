# image/root.sh (sourced by build.sh): the Debian root every profile
# starts from: the packages only, so that it is rebuilt only when the
# package list changes (what all images share is configured in
# image/common.sh, in the image stage, in seconds).
#
# make_tarball TGZ downloads the union of ./packages once (debootstrap
# --make-tarball; 30-64 s cold for x86_64 here). build_root OUT unpacks it
# into OUT/root (debootstrap --unpack-tarball: ~31 s for x86_64 on a quiet
# machine). For a foreign architecture that took 9 to 16 minutes here
# (aarch64: every maintainer script emulated by qemu-user on a loaded
# 2-core machine), so build_root_foreign makes it from the native root.

# debootstrap_logged OPTION DIR: debootstrap (minbase with the package
# list, for $debarch) into DIR; its log is shown only when it fails.
debootstrap_logged() {
	debootstrap --arch="$debarch" --variant=minbase --include="$(echo "$packages" | tr ' ' ',')" "$1" \
		"$suite" "$2" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/debootstrap.log" >&2
		exit 1
	}
}

make_tarball() {
	log "debootstrap $suite ($debarch), download: $packages"
	debootstrap_logged --make-tarball="$tmp/db.tgz" "$tmp/db"
	mv "$tmp/db.tgz" "$1"
	rm -rf "$tmp/db"
}

build_root() {
	rr=$1/root
	log "debootstrap $suite ($debarch), unpack"
	debootstrap_logged --unpack-tarball="$tarball" "$rr"
	rm -rf "$rr"/var/cache/apt/archives/*.deb "$rr"/var/lib/apt/lists/* \
		"$rr"/usr/share/doc "$rr"/usr/share/man "$rr"/usr/share/locale "$rr"/usr/share/info
	: >"$rr/etc/machine-id"
	# Each profile makes the host keys its installer has.
	rm -f "$rr"/etc/ssh/ssh_host_*
}

# build_root_foreign OUT: the root for a foreign architecture ($debarch,
# from $tarball) made from the configured native root ($nrdir) in
# seconds (9-29 s measured), without emulating a maintainer script: the same package list
# configures the same way on every architecture (users, groups, the
# alternatives, /etc), so the native root's configuration is kept and the
# foreign packages' files are unpacked over it. Then the native
# libraries, loader and packages the foreign set lacks (x86_64's
# dmidecode and libcpuid16) go, and the linker cache is made for the
# foreign libraries (ldconfig, emulated: seconds). The dpkg database still
# names the native architecture: nothing runs apt or dpkg in a rig VM of a
# foreign architecture (the zfs variant is x86_64 only).
build_root_foreign() {
	rr=$1/root
	log "root for $debarch: the native root with the $debarch packages unpacked over it"
	cp -a "$nrdir/root" "$rr"
	info=$rr/var/lib/dpkg/info
	ls "$info" | sed -n 's/^\([^:]*\)\(:[a-z0-9]*\)\{0,1\}\.list$/\1/p' | sort -u >"$tmp/native.pkgs"
	tar -tzf "$tarball" | sed -n 's|^var/cache/apt/archives/\([^_]*\)_.*\.deb$|\1|p' | sort -u >"$tmp/foreign.pkgs"
	for p in $(comm -23 "$tmp/native.pkgs" "$tmp/foreign.pkgs"); do
		for l in "$info/$p.list" "$info/$p:$ndebarch.list"; do
			[ -f "$l" ] || continue
			while read -r f; do
				if [ -L "$rr$f" ] || [ -f "$rr$f" ]; then rm -f "$rr$f"; fi
			done <"$l"
		done
	done
	mkdir -p "$tmp/foreign"
	tar -xzf "$tarball" -C "$tmp/foreign" var/cache/apt/archives
	for deb in "$tmp"/foreign/var/cache/apt/archives/*.deb; do
		# Keep the merged /usr: /bin, /sbin, /lib are symlinks in the root.
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$rr" --keep-directory-symlink
	done
	case $ndebarch in
	amd64) rm -rf "$rr/usr/lib/x86_64-linux-gnu" "$rr/usr/lib64" "$rr/lib64" ;;
	arm64) rm -rf "$rr/usr/lib/aarch64-linux-gnu" ;;
	esac
	rm -rf "$rr"/usr/share/doc "$rr"/usr/share/man "$rr"/usr/share/locale "$rr"/usr/share/info
	chroot "$rr" /sbin/ldconfig
	# Every program must now be the foreign architecture's.
	if ! chroot "$rr" /bin/true; then die "root for $debarch: its /bin/true does not run"; fi
}