package disko

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/internal/mountinfo"
	"github.com/fleetnix/fleet/remote"
)

// This file holds the applier's questions to the machine: what blkid,
// sgdisk, sysfs and mountinfo say. None of them changes anything.

func (a *applier) out(ctx context.Context, args ...string) ([]byte, error) {
	res, err := a.r.Run(ctx, remote.Cmd{Args: args})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// blkType is blkid's TYPE (or PTTYPE for whole disks) of dev, "" for nothing.
func (a *applier) blkType(ctx context.Context, dev string, pt bool) (string, error) {
	out, err := a.out(ctx, "blkid", "-p", "-o", "export", dev)
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Code == 2 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			kv[k] = v
		}
	}
	if pt && kv["PTTYPE"] != "" {
		return kv["PTTYPE"], nil
	}
	return kv["TYPE"], nil
}

func (a *applier) exists(ctx context.Context, dev string) bool {
	_, err := a.out(ctx, "test", "-b", dev)
	return err == nil
}

// gone reports whether dev is positively absent (not merely unreadable:
// a dead connection says nothing about the disk).
func (a *applier) gone(ctx context.Context, dev string) bool {
	out, err := a.out(ctx, "sh", "-c", `if test -b "$1"; then echo present; else echo gone; fi`, "fleet-disk-check", dev)
	return err == nil && strings.TrimSpace(string(out)) == "gone"
}

// partInfo is one partition as sgdisk -i reports it.
type partInfo struct {
	TypeGUID    string
	First, Last int64 // sectors
	Name        string
}

func (a *applier) partInfo(ctx context.Context, disk string, n int) (*partInfo, error) {
	out, err := a.out(ctx, "sgdisk", "-i", strconv.Itoa(n), disk)
	if err != nil {
		return nil, err
	}
	pi := &partInfo{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Partition GUID code":
			pi.TypeGUID, _, _ = strings.Cut(v, " ")
		case "First sector":
			f, _, _ := strings.Cut(v, " ")
			pi.First, _ = strconv.ParseInt(f, 10, 64)
		case "Last sector":
			f, _, _ := strings.Cut(v, " ")
			pi.Last, _ = strconv.ParseInt(f, 10, 64)
		case "Partition name":
			pi.Name = strings.Trim(v, "'")
		}
	}
	if pi.TypeGUID == "" || strings.HasPrefix(pi.TypeGUID, "00000000") {
		return nil, nil // no such partition
	}
	return pi, nil
}

// partTable reads a disk's gpt partitions with partx, which opens the
// disk read-only (sgdisk -i opens it for writing, and udev answers the
// close with a change event).
func (a *applier) partTable(ctx context.Context, disk string) (map[int]*partInfo, error) {
	out, err := a.out(ctx, "partx", "-g", "-r", "-o", "NR,START,END,TYPE,NAME", disk)
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return map[int]*partInfo{}, nil // no partition table
	}
	if err != nil {
		return nil, err
	}
	parts := map[int]*partInfo{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, " ", 5)
		if len(f) < 4 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		first, err2 := strconv.ParseInt(f[1], 10, 64)
		last, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		pi := &partInfo{TypeGUID: strings.ToUpper(f[3]), First: first, Last: last}
		if len(f) == 5 {
			pi.Name = unescapeLsblk(f[4])
		}
		parts[n] = pi
	}
	return parts, nil
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct{ devNum, root, target, fstype, source string }

func (a *applier) mounts(ctx context.Context) ([]mountInfo, error) {
	out, err := a.out(ctx, "cat", "/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []mountInfo
	for _, l := range strings.Split(string(out), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		ms = append(ms, mountInfo{devNum: f[2], root: mountinfo.Unescape(f[3]), target: mountinfo.Unescape(f[4]), fstype: g[0], source: mountinfo.Unescape(g[1])})
	}
	return ms, nil
}

func (a *applier) mountedAt(ctx context.Context, target string) (*mountInfo, error) {
	ms, err := a.mounts(ctx)
	if err != nil {
		return nil, err
	}
	var found *mountInfo
	for i := range ms {
		if ms[i].target == target {
			found = &ms[i]
		}
	}
	return found, nil
}

// sameDevice reports whether two device paths name the same node.
func (a *applier) sameDevice(ctx context.Context, x, y string) bool {
	if x == y {
		return true
	}
	rx, err1 := a.out(ctx, "readlink", "-f", x)
	ry, err2 := a.out(ctx, "readlink", "-f", y)
	return err1 == nil && err2 == nil && strings.TrimSpace(string(rx)) == strings.TrimSpace(string(ry))
}

// mdByName returns the running array for /dev/md/NAME: the link when it
// exists, else the kernel's /dev/mdN whose MD_NAME is HOST:NAME or NAME;
// "" if none runs.
func (a *applier) mdByName(ctx context.Context, dev string) (string, error) {
	if a.exists(ctx, dev) {
		return dev, nil
	}
	out, err := a.out(ctx, "sh", "-c", `for d in /dev/md[0-9]*; do [ -b "$d" ] || continue; n=$(mdadm --detail --export "$d" 2>/dev/null | sed -n 's/^MD_NAME=//p'); [ -n "$n" ] && echo "$d $n"; done; true`)
	if err != nil {
		return "", err
	}
	name := path.Base(dev)
	for _, l := range strings.Split(string(out), "\n") {
		d, n, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if _, short, found := strings.Cut(n, ":"); n == name || (found && short == name) {
			return d, nil
		}
	}
	return "", nil
}

// resolve turns a planned /dev/md/NAME path (or one of its partitions')
// into a node that exists: udev's link when there is one, else the
// kernel's /dev/mdN (and /dev/mdNpK). Other paths stay as they are.
func (a *applier) resolve(ctx context.Context, dev string) string {
	md, ok := a.mdDevs[dev]
	if !ok || a.exists(ctx, dev) {
		return dev
	}
	node, err := a.mdByName(ctx, "/dev/md/"+md.name)
	if err != nil || node == "" {
		return dev
	}
	if md.part > 0 {
		// The kernel names an array's partitions after its node.
		return PartNode(a.kernelNode(ctx, node), md.part)
	}
	return node
}

// resolveArgs resolves the md paths among a command's arguments.
func (a *applier) resolveArgs(ctx context.Context, args []string) []string {
	out := append([]string(nil), args...)
	for i, arg := range out {
		if _, ok := a.mdDevs[arg]; ok {
			out[i] = a.resolve(ctx, arg)
		}
	}
	return out
}

// kernelNode is the kernel's node (/dev/md127, /dev/sda) for dev.
func (a *applier) kernelNode(ctx context.Context, dev string) string {
	dev = a.resolve(ctx, dev)
	out, err := a.out(ctx, "readlink", "-f", dev)
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return dev
	}
	return strings.TrimSpace(string(out))
}

// stateScript prints one line per block device of the disks it is given,
// their partitions and what is built on them (md, dm: LUKS, LVs),
// following holders: kernel name, bytes, what blkid finds, the mountpoint
// and the holders. It reads sysfs, blkid and /proc/mounts, so it needs no
// udev.
const stateScript = `seen=" "
show() {
  n=$1
  case "$seen" in *" $n "*) return;; esac
  seen="$seen$n "
  d=/sys/class/block/$n
  [ -e "$d/size" ] || return
  t=$(blkid -p -o value -s TYPE "/dev/$n" 2>/dev/null)
  [ -n "$t" ] || t=$(blkid -p -o value -s PTTYPE "/dev/$n" 2>/dev/null)
  m=$(awk -v d="/dev/$n" '$1==d {print $2; exit}' /proc/mounts)
  name=$(cat "$d/dm/name" 2>/dev/null || cat "$d/md/array_state" 2>/dev/null | sed 's/^/md /')
  h=$(ls "$d/holders" 2>/dev/null | tr '\n' ' ')
  echo "$n|$(( $(cat "$d/size") * 512 ))|${t:-}|${m:-}|${name:-}|$h"
  for x in $h; do show "$x"; done
}
for disk in "$@"; do
  b=${disk##*/}
  show "$b"
  for p in /sys/class/block/$b/$b*; do [ -e "$p/partition" ] && show "${p##*/}"; done
done
true`

// state says what is on the layout's disks and built on them (partitions,
// md, dm, LVs, filesystems, mounts), one line a device, for the error of a
// step that failed. Bounded, and escaped: it is remote text.
func (a *applier) state(ctx context.Context) []string {
	if len(a.disks) == 0 {
		return nil
	}
	out, err := a.out(ctx, append([]string{"sh", "-c", stateScript, "fleet-state"}, a.disks...)...)
	if err != nil {
		return []string{"(cannot tell: " + escapeRemote(err.Error()) + ")"}
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 6 {
			continue
		}
		if len(lines) == 64 {
			lines = append(lines, "...")
			break
		}
		size, _ := strconv.ParseInt(f[1], 10, 64)
		var b strings.Builder
		b.WriteString(f[0])
		if f[4] != "" {
			b.WriteString(" (" + f[4] + ")")
		}
		b.WriteString(": " + humanBytes(size))
		if f[2] != "" {
			b.WriteString(", " + f[2])
		} else {
			b.WriteString(", nothing blkid knows")
		}
		if f[3] != "" {
			b.WriteString(", mounted on " + f[3])
		}
		if h := strings.TrimSpace(f[5]); h != "" {
			b.WriteString(", held by " + h)
		}
		lines = append(lines, escapeRemote(b.String()))
	}
	return lines
}

// humanBytes writes a size in binary units, one decimal.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[u])
}

// escapeRemote makes remote text safe for a terminal: control characters
// become \xNN.
func escapeRemote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			b.WriteString(`\x` + strconv.FormatInt(int64(r), 16))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
