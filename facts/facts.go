// Package facts reports what a machine is: OS, kernel, architecture,
// model and firmware, whether it is a NixOS installer (and why), which
// tools it has, memory, and its disks with whether each is in use.
//
// [Gather] runs one shell script through a [remote.Runner] (one round trip,
// POSIX sh and /proc + /sys only, so it works on a NixOS installer, a
// rescue system or busybox) and [Parse] turns its output into [Facts].
// The parser is separate so it is tested on recorded outputs as well as
// live machines. Every string in Facts came from the machine and is
// escaped with [remote.Escape]. [MissingPrograms] asks which of a list of
// programs a machine lacks.
package facts

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/internal/mountinfo"
	"github.com/fleetnix/fleet/remote"
)

// Facts about one machine. The JSON form is stable: fields are only added.
type Facts struct {
	Host      string `json:"host"`
	OSID      string `json:"os_id"`
	OSVersion string `json:"os_version"`
	OSName    string `json:"os_name"`
	Kernel    string `json:"kernel"`
	Machine   string `json:"machine"` // uname -m
	System    string `json:"system"`  // Nix system double, e.g. x86_64-linux
	// Model is the machine's model: the device tree's on ARM boards
	// ("Raspberry Pi 4 Model B Rev 1.4"), DMI's product name elsewhere
	// (a UEFI ARM machine booted with ACPI, qemu's virt machine among
	// them: "QEMU Virtual Machine"); without either, the device tree's
	// first compatible string ("linux,dummy-virt"); "" when the firmware
	// gives none.
	Model string `json:"model"`
	// UEFI reports whether the machine booted through UEFI firmware
	// (/sys/firmware/efi exists), as opposed to a BIOS or a board's own
	// boot loader.
	UEFI  bool `json:"uefi"`
	NixOS bool `json:"nixos"`
	// Installer: NixOS (/etc/NIXOS) and either VARIANT_ID=installer in
	// /etc/os-release or a live root (overlay or tmpfs as /).
	Installer bool `json:"installer"`
	// InstallerReason says which check decided Installer: what made it an
	// installer, or which check failed ("it runs Debian GNU/Linux 12
	// (bookworm), not NixOS (no /etc/NIXOS)").
	InstallerReason string `json:"installer_reason"`
	// RootFS is the filesystem type mounted at / ("overlay", "ext4").
	RootFS       string `json:"root_fs"`
	HasNix       bool   `json:"has_nix"`
	HasNixOSInst bool   `json:"has_nixos_install"`
	MemoryBytes  int64  `json:"memory_bytes"`
	Disks        []Disk `json:"disks"`
}

// Disk is a whole block device.
type Disk struct {
	Name       string      `json:"name"`
	Path       string      `json:"path"`
	ByID       []string    `json:"by_id"`
	SizeBytes  int64       `json:"size_bytes"`
	Model      string      `json:"model"`
	Rotational bool        `json:"rotational"`
	Removable  bool        `json:"removable"`
	ReadOnly   bool        `json:"read_only"`
	Partitions []Partition `json:"partitions"`
	// InUse lists why the disk must not be touched: "mounted at /",
	// "swap on /dev/vda2", "held by md127". Empty when it is free.
	InUse []string `json:"in_use"`
	// Root marks the disk that holds the running root (or the live media).
	Root bool `json:"root"`
}

// Partition is a partition of a Disk.
type Partition struct {
	Name      string   `json:"name"`
	Path      string   `json:"path"`
	Number    int      `json:"number"`
	SizeBytes int64    `json:"size_bytes"`
	Mounts    []string `json:"mounts"`
	Swap      bool     `json:"swap"`
	Holders   []string `json:"holders"`
}

// Free reports whether nothing uses the disk.
func (d Disk) Free() bool { return len(d.InUse) == 0 }

// Disk returns the disk with the given name or path (/dev/vda, vda, or a
// /dev/disk/by-id link).
func (f *Facts) Disk(nameOrPath string) (Disk, bool) {
	for _, d := range f.Disks {
		if d.Name == nameOrPath || d.Path == nameOrPath {
			return d, true
		}
		for _, l := range d.ByID {
			if l == nameOrPath {
				return d, true
			}
		}
	}
	return Disk{}, false
}

// script prints sections the parser reads. Only /proc, /sys, uname and
// POSIX sh, so it runs anywhere Linux does.
const script = `echo @@os; cat /etc/os-release 2>/dev/null
echo @@kernel; uname -r
echo @@machine; uname -m
echo @@nixos; [ -e /etc/NIXOS ] && echo yes
echo @@model
for f in /sys/firmware/devicetree/base/model /proc/device-tree/model; do
  if [ -r "$f" ]; then echo "dt $(tr -d '\000' < "$f")"; break; fi
done
for f in /sys/firmware/devicetree/base/compatible /proc/device-tree/compatible; do
  if [ -r "$f" ]; then echo "dtc $(tr '\000' '\n' < "$f" | head -n1)"; break; fi
done
[ -r /sys/class/dmi/id/product_name ] && echo "dmi $(cat /sys/class/dmi/id/product_name)"
echo @@efi; [ -d /sys/firmware/efi ] && echo yes
echo @@cmds; for c in nix nixos-install; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done
echo @@meminfo; grep '^MemTotal:' /proc/meminfo
echo @@mountinfo; cat /proc/self/mountinfo
echo @@swaps; cat /proc/swaps 2>/dev/null
echo @@byid; for l in /dev/disk/by-id/*; do [ -L "$l" ] && echo "$l $(readlink -f "$l")"; done
echo @@block
for d in /sys/class/block/*; do
  [ -e "$d/dev" ] || continue
  n=${d##*/}
  part=0; parent=-; pn=0
  if [ -e "$d/partition" ]; then part=1; pn=$(cat "$d/partition"); parent=$(basename "$(readlink -f "$d/..")"); fi
  h=$(ls "$d/holders" 2>/dev/null | tr '\n' ,)
  sl=$(ls "$d/slaves" 2>/dev/null | tr '\n' ,)
  printf 'B\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$(cat "$d/dev")" "$(cat "$d/size")" "$part" "$parent" "$pn" \
    "$(cat "$d/removable" 2>/dev/null || echo 0)" "$(cat "$d/queue/rotational" 2>/dev/null || echo 0)" "$(cat "$d/ro" 2>/dev/null || echo 0)" \
    "$h" "$sl" "$(cat "$d/device/model" 2>/dev/null | tr -s ' \t' ' ')" "$(cat "$d/hidden" 2>/dev/null || echo 0)"
done
`

// Script returns the shell script [Gather] runs (with sh -c), for running
// it by other means, such as plain ssh in a comparison; [Parse] reads what
// it prints.
func Script() string { return script }

// Gather collects the facts of the machine r runs on, in one command.
func Gather(ctx context.Context, r remote.Runner) (*Facts, error) {
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script}, Label: "gather facts"})
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	f, err := Parse(res.Stdout)
	if err != nil {
		return nil, err
	}
	f.Host = r.Host()
	return f, nil
}

type blockDev struct {
	name, dev, parent   string
	sectors             int64
	part                bool
	partNum             int
	removable, rota, ro bool
	hidden              bool // an NVMe multipath path device, not a disk of its own
	holders, slaves     []string
	model               string
}

// Parse reads the output of the facts script.
func Parse(out []byte) (*Facts, error) {
	sections := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "@@") {
			cur = line[2:]
			sections[cur] = []string{}
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	if _, ok := sections["block"]; !ok {
		return nil, fmt.Errorf("gather facts: unexpected output (no block device section)")
	}
	f := &Facts{Disks: []Disk{}}
	osr := map[string]string{}
	for _, l := range sections["os"] {
		k, v, ok := strings.Cut(l, "=")
		if ok {
			osr[k] = strings.Trim(v, `"'`)
		}
	}
	f.OSID, f.OSVersion, f.OSName = osr["ID"], osr["VERSION_ID"], osr["PRETTY_NAME"]
	f.Kernel = first(sections["kernel"])
	f.Machine = first(sections["machine"])
	f.System = NixSystem(f.Machine)
	f.NixOS = first(sections["nixos"]) == "yes"
	f.Model = model(sections["model"])
	f.UEFI = first(sections["efi"]) == "yes"
	for _, c := range sections["cmds"] {
		switch c {
		case "nix":
			f.HasNix = true
		case "nixos-install":
			f.HasNixOSInst = true
		}
	}
	if fs := strings.Fields(first(sections["meminfo"])); len(fs) >= 2 {
		kb, _ := strconv.ParseInt(fs[1], 10, 64)
		f.MemoryBytes = kb * 1024
	}

	devs := map[string]*blockDev{}
	byDev := map[string]string{} // "maj:min" -> name
	for _, l := range sections["block"] {
		fs := strings.Split(l, "\t")
		if len(fs) < 13 || fs[0] != "B" {
			continue
		}
		b := &blockDev{name: fs[1], dev: fs[2], part: fs[4] == "1", parent: fs[5],
			removable: fs[7] == "1", rota: fs[8] == "1", ro: fs[9] == "1",
			holders: splitList(fs[10]), slaves: splitList(fs[11]), model: strings.TrimSpace(fs[12])}
		b.sectors, _ = strconv.ParseInt(fs[3], 10, 64)
		b.partNum, _ = strconv.Atoi(fs[6])
		b.hidden = len(fs) > 13 && fs[13] == "1"
		devs[b.name] = b
		byDev[b.dev] = b.name
	}
	// Mounts by device, and the devices behind the running root.
	mounts := map[string][]string{}
	mountDev := map[string]string{} // mountpoint -> device name
	var rootDevs []string
	var lowerDirs []string
	var root rootMount
	for _, l := range sections["mountinfo"] {
		fs := strings.Fields(l)
		if len(fs) < 10 {
			continue
		}
		mp := mountinfo.Unescape(fs[4])
		name := byDev[fs[2]]
		sep := 6
		for sep < len(fs) && fs[sep] != "-" {
			sep++
		}
		if name == "" && sep+2 < len(fs) {
			// btrfs and others report an anonymous device: use the source.
			if src := fs[sep+2]; strings.HasPrefix(src, "/dev/") {
				name = devs[strings.TrimPrefix(src, "/dev/")].nameOr(strings.TrimPrefix(src, "/dev/"))
			}
		}
		if name != "" && devs[name] != nil {
			mounts[name] = append(mounts[name], mp)
			mountDev[mp] = name
		}
		if mp == "/" {
			// The last mount at / is the one on top: the running root.
			root = rootMount{}
			if sep+2 < len(fs) {
				root = rootMount{fstype: fs[sep+1], source: fs[sep+2]}
			}
			if name != "" && devs[name] != nil {
				rootDevs = append(rootDevs, name)
			}
			if sep+3 < len(fs) {
				for _, opt := range strings.Split(fs[sep+3], ",") {
					if v, ok := strings.CutPrefix(opt, "lowerdir="); ok {
						lowerDirs = append(lowerDirs, strings.Split(v, ":")...)
					}
				}
			}
		}
	}
	f.RootFS = root.fstype
	f.Installer, f.InstallerReason = installer(f, osr["VARIANT_ID"], root)
	// A live system's root is an overlay: its media are what the lower
	// directories are mounted from.
	for _, ld := range lowerDirs {
		if n, ok := mountDev[ld]; ok {
			rootDevs = append(rootDevs, n)
		}
	}
	swaps := map[string]bool{}
	for i, l := range sections["swaps"] {
		if i == 0 || l == "" {
			continue
		}
		if fs := strings.Fields(l); len(fs) > 0 {
			swaps[strings.TrimPrefix(fs[0], "/dev/")] = true
		}
	}
	byID := map[string][]string{}
	for _, l := range sections["byid"] {
		link, target, ok := strings.Cut(l, " ")
		if ok {
			byID[strings.TrimPrefix(target, "/dev/")] = append(byID[strings.TrimPrefix(target, "/dev/")], link)
		}
	}
	// The whole disks under each root device (through dm/md slaves).
	rootDisks := map[string]bool{}
	var walk func(string, int)
	walk = func(n string, depth int) {
		b := devs[n]
		if b == nil || depth > 8 {
			return
		}
		if b.part {
			walk(b.parent, depth+1)
			return
		}
		if len(b.slaves) == 0 {
			rootDisks[n] = true
		}
		for _, s := range b.slaves {
			walk(s, depth+1)
		}
	}
	for _, r := range rootDevs {
		walk(r, 0)
	}

	for _, b := range devs {
		if b.part || b.sectors == 0 || b.hidden || skipDevice(b.name) {
			continue
		}
		d := Disk{Name: b.name, Path: "/dev/" + b.name, ByID: byID[b.name], SizeBytes: b.sectors * 512,
			Model: b.model, Rotational: b.rota, Removable: b.removable, ReadOnly: b.ro,
			Partitions: []Partition{}, InUse: []string{}, Root: rootDisks[b.name]}
		if d.ByID == nil {
			d.ByID = []string{}
		}
		sort.Strings(d.ByID)
		use := func(what string) { d.InUse = append(d.InUse, what) }
		for _, m := range mounts[b.name] {
			use("mounted at " + m)
		}
		if swaps[b.name] {
			use("swap on " + d.Path)
		}
		for _, h := range b.holders {
			use("held by " + h)
		}
		for _, p := range devs {
			if p.part && p.parent == b.name {
				d.Partitions = append(d.Partitions, Partition{Name: p.name, Path: "/dev/" + p.name, Number: p.partNum,
					SizeBytes: p.sectors * 512, Mounts: orEmpty(mounts[p.name]), Swap: swaps[p.name], Holders: orEmpty(p.holders)})
			}
		}
		sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
		for _, part := range d.Partitions {
			for _, m := range part.Mounts {
				use(part.Path + " mounted at " + m)
			}
			if part.Swap {
				use("swap on " + part.Path)
			}
			for _, h := range part.Holders {
				use(part.Path + " held by " + h)
			}
		}
		if d.Root && len(d.InUse) == 0 {
			use("holds the running root")
		}
		f.Disks = append(f.Disks, d)
	}
	sort.Slice(f.Disks, func(i, j int) bool { return f.Disks[i].Name < f.Disks[j].Name })
	escapeFacts(f)
	return f, nil
}

// model picks the device tree's model, else DMI's product name, else
// the device tree's first compatible string.
func model(lines []string) string {
	var dmi, compatible string
	for _, l := range lines {
		kind, v, _ := strings.Cut(l, " ")
		v = strings.TrimSpace(v)
		switch {
		case kind == "dt" && v != "":
			return v
		case kind == "dmi":
			dmi = v
		case kind == "dtc":
			compatible = v
		}
	}
	if dmi != "" {
		return dmi
	}
	return compatible
}

// escapeFacts escapes every string that came from the machine, so none
// can drive the terminal it is printed on.
func escapeFacts(f *Facts) {
	for _, p := range []*string{&f.OSID, &f.OSVersion, &f.OSName, &f.Kernel, &f.Machine, &f.System, &f.Model, &f.InstallerReason, &f.RootFS} {
		*p = remote.Escape(*p)
	}
	each := func(ss []string) {
		for i := range ss {
			ss[i] = remote.Escape(ss[i])
		}
	}
	for i := range f.Disks {
		d := &f.Disks[i]
		d.Name, d.Path, d.Model = remote.Escape(d.Name), remote.Escape(d.Path), remote.Escape(d.Model)
		each(d.ByID)
		each(d.InUse)
		for j := range d.Partitions {
			p := &d.Partitions[j]
			p.Name, p.Path = remote.Escape(p.Name), remote.Escape(p.Path)
			each(p.Mounts)
			each(p.Holders)
		}
	}
}

func (b *blockDev) nameOr(s string) string {
	if b == nil {
		return s
	}
	return b.name
}

// skipDevice leaves out RAM disks, optical drives, floppies, raw flash
// (mtdblock: a board's firmware chip) and an eMMC's hardware boot and
// RPMB areas (mmcblk0boot0, mmcblk0rpmb): none is a disk to install on.
func skipDevice(name string) bool {
	for _, p := range []string{"ram", "zram", "sr", "fd", "mtdblock"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return mmcArea.MatchString(name)
}

// mmcArea names an eMMC's boot and RPMB areas.
var mmcArea = regexp.MustCompile(`^mmcblk[0-9]+(boot[0-9]+|rpmb)$`)

// NixSystem maps uname -m to Nix's system double.
func NixSystem(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "x86_64-linux"
	case "aarch64", "arm64":
		return "aarch64-linux"
	case "armv7l":
		return "armv7l-linux"
	case "i686", "i586", "i386":
		return "i686-linux"
	case "riscv64":
		return "riscv64-linux"
	case "":
		return ""
	}
	return machine + "-linux"
}

func first(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.TrimSpace(ls[0])
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// HumanBytes is n bytes in binary units with one decimal ("1.5 GiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
