# image/prune.sh (sourced by build.sh): remove a stage's other builds once
# unused for $keep_days days. In: $keep_days, log().
#
# A build is used when its "used" stamp is touched (a directory's
# DIR/used, a file's FILE.used; without one, its own mtime counts): by
# build.sh whenever it returns or builds on it, by the rig's Load. A
# build with a "lock" file is in use while anyone holds a flock on it
# (the rig holds a shared one as long as a process may boot from it), and
# is never removed then.

# key_glob matches a stage's key, 16 hex digits: debian-$key_glob never
# matches debian-zfs-KEY.
key_glob=$(printf '[0-9a-f]%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)

# stale PATH: unused for keep_days and not locked.
stale() {
	stamp=$1/used
	[ -d "$1" ] || stamp=$1.used
	[ -e "$stamp" ] || stamp=$1
	[ -n "$(find "$stamp" -maxdepth 0 -mmin +"$((keep_days * 1440))" 2>/dev/null)" ] || return 1
	[ ! -e "$1/lock" ] || flock -n -x "$1/lock" true
}

# prune GLOB KEEP: remove what GLOB matches but KEEP, when stale, with its
# stamp, lock and leftover temporary directory.
prune() {
	for old in $1; do
		[ -e "$old" ] && [ "$old" != "$2" ] || continue
		case $old in *.used | *.tmp | *.lock) continue ;; esac
		if stale "$old"; then
			log "prune $old (unused for $keep_days days)"
			rm -rf "$old" "$old.used" "$old.lock" "$old.tmp"
		fi
	done
}
