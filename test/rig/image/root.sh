# image/root.sh (sourced by build.sh): the Debian root every profile
# starts from: the packages only, so that it is rebuilt only when the
# package list changes (what all images share is configured in
# image/common.sh, in the image stage, in seconds).
#
# make_tarball TGZ downloads the union of ./packages once (debootstrap
# --make-tarball; 30-64 s cold for x86_64 here). build_root OUT unpacks it
# into OUT/root (debootstrap --unpack-tarball: ~31 s for x86_64; 9 min for
# aarch64 through qemu-user on a loaded 2-core machine).

make_tarball() {
	inc=$(echo "$packages" | tr ' ' ',')
	log "debootstrap $suite ($debarch), download: $packages"
	debootstrap --arch="$debarch" --variant=minbase --include="$inc" --make-tarball="$tmp/db.tgz" \
		"$suite" "$tmp/db" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/debootstrap.log" >&2
		exit 1
	}
	mv "$tmp/db.tgz" "$1"
	rm -rf "$tmp/db"
}

build_root() {
	rr=$1/root
	inc=$(echo "$packages" | tr ' ' ',')
	log "debootstrap $suite ($debarch), unpack"
	debootstrap --arch="$debarch" --variant=minbase --include="$inc" --unpack-tarball="$tarball" \
		"$suite" "$rr" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 30 "$tmp/debootstrap.log" >&2
		exit 1
	}
	rm -rf "$rr"/var/cache/apt/archives/*.deb "$rr"/var/lib/apt/lists/* \
		"$rr"/usr/share/doc "$rr"/usr/share/man "$rr"/usr/share/locale "$rr"/usr/share/info
	: >"$rr/etc/machine-id"
	# Each profile makes the host keys its installer has.
	rm -f "$rr"/etc/ssh/ssh_host_*
}
