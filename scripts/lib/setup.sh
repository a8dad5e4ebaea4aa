# scripts/lib/setup.sh: make sure the packages in scripts/packages are
# installed. Sourced by scripts/demo, scripts/test and .ci/run.
#
#   fleet_setup WHO    WHO names the caller in messages (demo, test, ci)
#
# As root on Debian, the missing packages are installed with apt-get
# (--no-install-recommends); anywhere else, the exact list is printed and
# the caller stops.
fleet_packages() {
	sed -e 's/#.*//' -e 's/[[:space:]]//g' "$(dirname "${BASH_SOURCE[0]}")/../packages" | grep -v '^$'
}

fleet_missing() {
	local p
	for p in $(fleet_packages); do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			echo "$p"
		fi
	done
}

fleet_setup() {
	local who=${1:-setup} missing
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "$who: this is not a Debian system; install the equivalents of:" >&2
		echo "  $(fleet_packages | tr '\n' ' ')" >&2
		return 1
	fi
	missing=$(fleet_missing | tr '\n' ' ')
	[ -n "${missing// /}" ] || return 0
	if [ "$(id -u)" != 0 ]; then
		echo "$who: missing Debian packages; as root run:" >&2
		echo "  apt-get install --no-install-recommends $missing" >&2
		return 1
	fi
	echo "$who: installing $missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	missing=$(fleet_missing | tr '\n' ' ')
	if [ -n "${missing// /}" ]; then
		echo "$who: apt-get did not install: $missing" >&2
		return 1
	fi
}
