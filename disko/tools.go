package disko

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// Tools is what the installer has of the programs a layout needs: their
// paths, the versions of those whose options changed over time, the GPT
// type codes its sgdisk knows, and whether udev runs. [QueryTools] asks
// in one round trip; an install's preflight can ask once and pass the
// result to every Apply ([ApplyOptions.Tools]).
type Tools struct {
	Paths    map[string]string // program -> path
	Versions map[string]string // sgdisk, sfdisk, parted, cryptsetup, lvm, mdadm, btrfs, xfs -> "2.6.1"
	GPTCodes map[string]bool   // sgdisk -L's type codes, upper case; empty if unknown
	Udev     bool              // udevd runs: trigger and settle after partitioning
}

// toolPrograms are the programs QueryTools looks for.
var toolPrograms = []string{"sgdisk", "sfdisk", "parted", "partx", "wipefs", "blkid", "blockdev", "mkswap",
	"mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "mkfs.vfat", "mkfs.xfs", "mkfs.btrfs", "mkfs.f2fs", "mkfs.exfat", "btrfs",
	"cryptsetup", "pvcreate", "vgcreate", "lvcreate", "vgchange", "vgs", "lvs", "mdadm", "dmsetup", "udevadm", "bash",
	"zpool", "zfs", "zdb", "modprobe"}

// versionArgs are how each versioned program says its version (first line).
var versionArgs = map[string][]string{
	"sgdisk":     {"sgdisk", "--version"},
	"sfdisk":     {"sfdisk", "--version"},
	"parted":     {"parted", "--version"},
	"cryptsetup": {"cryptsetup", "--version"},
	"lvm":        {"lvm", "version"},
	"mdadm":      {"mdadm", "--version"},
	"btrfs":      {"btrfs", "--version"},
	"xfs":        {"mkfs.xfs", "-V"},
	"zfs":        {"zfs", "version"},
}

// QueryTools asks the installer, in one round trip, which of the programs
// a layout may need it has, their versions, sgdisk's type codes, and
// whether udev runs.
func QueryTools(ctx context.Context, r remote.Runner) (*Tools, error) {
	var b strings.Builder
	b.WriteString("for p in " + strings.Join(toolPrograms, " ") + "; do if c=$(command -v \"$p\"); then echo \"have $p $c\"; fi; done\n")
	names := sortedKeys(versionArgs)
	for _, name := range names {
		args := versionArgs[name]
		fmt.Fprintf(&b, "if command -v %s >/dev/null; then printf 'version %s '; %s 2>&1 | head -n 1; fi\n", args[0], name, remote.ShellJoin(args))
	}
	b.WriteString("if command -v sgdisk >/dev/null; then sgdisk -L 2>/dev/null | head -c 65536 | sed 's/^/codes /'; fi\n")
	b.WriteString("if [ -d /run/udev ] && command -v udevadm >/dev/null; then echo udev; fi\ntrue\n")
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", b.String()}, Label: "fleet-tools"})
	if err != nil {
		return nil, err
	}
	return parseTools(string(res.Stdout)), nil
}

var versionRE = regexp.MustCompile(`[0-9]+(\.[0-9]+)+`)

func parseTools(out string) *Tools {
	t := &Tools{Paths: map[string]string{}, Versions: map[string]string{}, GPTCodes: map[string]bool{}}
	for _, l := range strings.Split(out, "\n") {
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "have":
			if p, path, ok := strings.Cut(rest, " "); ok {
				t.Paths[p] = path
			}
		case "version":
			if p, line, ok := strings.Cut(rest, " "); ok {
				t.Versions[p] = versionRE.FindString(line)
			}
		case "codes":
			for _, f := range strings.Fields(rest) {
				if codeRE.MatchString(f) {
					t.GPTCodes[strings.ToUpper(f)] = true
				}
			}
		case "udev":
			t.Udev = true
		}
	}
	return t
}

// versionAtLeast compares dotted versions ("2.3.4" >= "2.3"); an unknown
// version passes (nothing to hold against it).
func versionAtLeast(have, want string) bool {
	if have == "" {
		return true
	}
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range w {
		var hn int
		if i < len(h) {
			hn, _ = strconv.Atoi(h[i])
		}
		wn, _ := strconv.Atoi(w[i])
		if hn != wn {
			return hn > wn
		}
	}
	return true
}

// packages name where each program comes from, for the hint.
var packages = map[string]string{
	"sgdisk": "gptfdisk", "sfdisk": "util-linux", "partx": "util-linux", "wipefs": "util-linux", "blkid": "util-linux",
	"blockdev": "util-linux", "mkswap": "util-linux", "parted": "parted",
	"mkfs.ext2": "e2fsprogs", "mkfs.ext3": "e2fsprogs", "mkfs.ext4": "e2fsprogs", "mkfs.vfat": "dosfstools",
	"mkfs.xfs": "xfsprogs", "mkfs.btrfs": "btrfs-progs", "btrfs": "btrfs-progs", "mkfs.f2fs": "f2fs-tools",
	"mkfs.exfat": "exfatprogs", "cryptsetup": "cryptsetup", "pvcreate": "lvm2", "vgcreate": "lvm2", "lvcreate": "lvm2",
	"vgchange": "lvm2", "vgs": "lvm2", "lvs": "lvm2", "dmsetup": "lvm2", "mdadm": "mdadm", "bash": "bash",
	"zpool": "zfs", "zfs": "zfs", "zdb": "zfs", "modprobe": "kmod",
}

// need is a program (at a version) a step needs.
type need struct {
	program, version, versionOf, why string
}

// needs lists what the plan's steps run, and what their checks read.
func needs(steps []Step) []need {
	steps = flatten(steps)
	var out []need
	add := func(st *Step, program string) {
		out = append(out, need{program: program, why: st.Node})
	}
	for i := range steps {
		st := &steps[i]
		_, activates := st.Action.(activator)
		for _, c := range st.Cmds {
			if st.Kept && !activates {
				break // on a kept device it only checks: what its action reads is below
			}
			switch c[0] {
			case "btrfs":
				add(st, "btrfs")
				if len(c) > 2 && c[1] == "filesystem" && c[2] == "mkswapfile" {
					out = append(out, need{program: "btrfs", version: "6.1", versionOf: "btrfs", why: st.Node + " (btrfs filesystem mkswapfile)"})
				}
			case "cryptsetup":
				add(st, "cryptsetup")
				if slices.Contains(c, "--perf-no_read_workqueue") {
					out = append(out, need{program: "cryptsetup", version: "2.3.4", versionOf: "cryptsetup", why: st.Node + " (settings.bypassWorkqueues)"})
				}
				if slices.Contains(c, "--persistent") {
					out = append(out, need{program: "cryptsetup", version: "2.0", versionOf: "cryptsetup", why: st.Node + " (cryptsetup open --persistent)"})
				}
			case "sfdisk":
				add(st, "sfdisk")
				out = append(out, need{program: "sfdisk", version: "2.28", versionOf: "sfdisk", why: st.Node + " (sfdisk --label-nested)"})
			default:
				if _, known := packages[c[0]]; known {
					add(st, c[0])
				}
			}
		}
		switch st.Action.(type) {
		case *GPT:
			add(st, "sgdisk")
			add(st, "blkid")
		case *Probe:
			add(st, "partx")
		case *Table:
			add(st, "partx")
			add(st, "blkid")
		case *HybridMBR:
			add(st, "sfdisk")
		case *Mkfs, *Mkswap, *PVCreate, *LuksFormat:
			add(st, "blkid")
			add(st, "wipefs")
		case *Wipe: // mdadm and dmsetup only if something is built on the disk
			add(st, "blkid")
			add(st, "wipefs")
		case *VGCreate, *VGChange:
			add(st, "vgs")
		case *LVCreate:
			add(st, "lvs")
		case *MDCreate, *MDAssemble, *MDStop, *MDKeep:
			add(st, "mdadm")
		case *ZpoolCreate, *ZpoolImport:
			// zdb reads the labels: whose pool, imported by whom.
			add(st, "zpool")
			add(st, "zfs")
			add(st, "zdb")
			add(st, "modprobe")
			add(st, "blkid")
		}
	}
	return out
}

// Check refuses, before anything runs, a plan the installer cannot carry
// out: programs it lacks or has in too old a version, GPT type codes its
// sgdisk does not know (it would write 8300 instead, silently), and luks
// devices without a key. All problems are named at once.
func Check(s *Spec, steps []Step, opt ApplyOptions, t *Tools) error {
	var missing, old []string
	seen := map[string]bool{}
	for _, n := range needs(steps) {
		if _, ok := t.Paths[n.program]; !ok {
			if !seen[n.program] {
				seen[n.program] = true
				missing = append(missing, fmt.Sprintf("%s (from %s, for %s)", n.program, packages[n.program], n.why))
			}
			continue
		}
		if n.version != "" && !versionAtLeast(t.Versions[n.versionOf], n.version) && !seen[n.program+n.version] {
			seen[n.program+n.version] = true
			old = append(old, fmt.Sprintf("%s %s, %s needs %s or later", n.program, t.Versions[n.versionOf], n.why, n.version))
		}
	}
	if len(missing) > 0 {
		return refused(withHint(fmt.Errorf("the installer lacks %s: %w", strings.Join(missing, ", "), ErrTool), "add those packages to the installer image"))
	}
	if len(old) > 0 {
		return refused(withHint(fmt.Errorf("the installer has %s: %w", strings.Join(old, "; "), ErrTool), "boot a newer installer"))
	}
	if len(t.GPTCodes) > 0 {
		for _, d := range append(append([]*Node{}, s.Disks...), s.MDs...) {
			if d.Content == nil {
				continue
			}
			for _, pt := range d.Content.Partitions {
				if codeRE.MatchString(pt.TypeCode) && !t.GPTCodes[strings.ToUpper(pt.TypeCode)] {
					return refused(withHint(fmt.Errorf("%s: type %q: the installer's sgdisk knows no such code and would write 8300 instead: %w", pt.Path, pt.TypeCode, ErrSpec), "use a code from sgdisk -L, or the type's GUID"))
				}
			}
		}
	}
	var keyless, names []string
	for _, st := range flatten(steps) {
		if st.KeyName == "" || slices.Contains(names, st.KeyName) {
			continue
		}
		if len(opt.Keys[st.KeyName]) == 0 {
			names = append(names, st.KeyName)
			keyless = append(keyless, keyKind(&st)+" "+st.KeyName)
		}
	}
	if len(keyless) > 0 {
		sort.Strings(keyless)
		sort.Strings(names)
		flags := make([]string, len(names))
		for i, k := range names {
			flags[i] = "--disk-key " + k + "=FILE"
		}
		return refused(withHint(fmt.Errorf("no key for %s", strings.Join(keyless, ", ")), "pass %s", strings.Join(flags, " ")))
	}
	return checkZfsKeys(s, opt.Keys)
}

// keyKind says what a step's key opens: "luks" or "zfs dataset".
func keyKind(st *Step) string {
	switch st.Action.(type) {
	case *ZpoolCreate, *ZfsDataset, *ZfsLoadKey:
		return "zfs dataset"
	}
	return "luks"
}
