package hwconfig

import (
	"slices"
	"strings"
)

// RootScript prints one line, "R<TAB>SOURCE<TAB>DISKS<TAB>MODULES": the
// device the running root filesystem is mounted from, the whole disks
// under it (through partitions, device-mapper and md to their slaves),
// comma-separated, and the modules of those disks' driver chains,
// space-separated. Only sh and /sys, so it runs on any booted Linux.
const RootScript = chainFunc + `rootdisks() {
  if [ -n "$(ls "$1/slaves" 2>/dev/null)" ]; then
    for s in "$1"/slaves/*; do rootdisks "/sys/class/block/${s##*/}"; done
  elif [ -e "$1/partition" ]; then
    p=$(readlink -f "$1/.."); echo "${p##*/}"
  else
    p=$(readlink -f "$1"); echo "${p##*/}"
  fi
}
rsrc= rmm=
while read -r _ _ mm _ mp rest; do
  [ "$mp" = / ] || continue
  rmm=$mm; rsrc=${rest#* - }; rsrc=${rsrc#* }; rsrc=${rsrc%% *}
done </proc/self/mountinfo
rsys=/sys/dev/block/$rmm
if [ ! -e "$rsys" ] && [ -e "$rsrc" ]; then rsys=/sys/class/block/$(basename "$(readlink -f "$rsrc")"); fi
rdisks= rmods=
if [ -e "$rsys" ]; then
  for d in $(rootdisks "$rsys" | sort -u); do
    rdisks="$rdisks,$d"; rmods="$rmods$(chain "/sys/class/block/$d/device")"
  done
fi
printf 'R\t%s\t%s\t%s\n' "$rsrc" "${rdisks#,}" "$rmods"
`

// Root is where the running system's root is and what drives it.
type Root struct {
	Source  string   // the root filesystem's device, as mounted
	Disks   []string // the whole disks under it
	Modules []string // the kernel modules of their driver chains, canonical, each once
}

// ParseRoot reads [RootScript]'s line (its fields after "R").
func ParseRoot(fields []string) Root {
	r := Root{}
	if len(fields) > 0 {
		r.Source = clean(strings.TrimPrefix(fields[0], "/dev/"))
		if r.Source != "" && strings.HasPrefix(fields[0], "/dev/") {
			r.Source = "/dev/" + r.Source
		}
	}
	if len(fields) > 1 {
		for _, d := range strings.Split(fields[1], ",") {
			if d = clean(d); d != "" {
				r.Disks = append(r.Disks, d)
			}
		}
	}
	if len(fields) > 2 {
		for _, m := range strings.Fields(fields[2]) {
			if m = Canonical(m); moduleName.MatchString(m) && !slices.Contains(r.Modules, m) {
				r.Modules = append(r.Modules, m)
			}
		}
	}
	return r
}

// Missing are the modules of r's driver chain that declared (the
// configuration's boot.initrd.availableKernelModules and kernelModules)
// lacks: without them an initrd built from it cannot find the root.
func (r Root) Missing(declared []string) []string {
	have := map[string]bool{}
	for _, m := range declared {
		have[Canonical(m)] = true
	}
	var missing []string
	for _, m := range r.Modules {
		if !have[m] {
			missing = append(missing, m)
		}
	}
	return missing
}
