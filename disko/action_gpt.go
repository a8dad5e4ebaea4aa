package disko

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// GPT writes a gpt partition table: the partitions that are missing, in
// one sgdisk call (one per partition when some has its own alignment).
// check reuses a table whose partitions match (name, type, size,
// alignment) and fails on a mismatch unless wiping; verify reads every
// partition back with sgdisk -i.
type GPT struct {
	Table *Node
	work  *gptWork // what check found to do
}

func (*GPT) Kind() string { return "partition" }

// gptWork is what a partition step must do on the disk.
type gptWork struct {
	clear   bool         // write a new empty table first
	foreign string       // what blkid finds instead of a gpt
	create  []*Partition // partitions to (re)create
	del     []int        // mismatching partitions to delete first (--wipe)
}

func (g *GPT) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	w := &gptWork{}
	g.work = w
	dev := a.resolve(ctx, st.Device)
	t, err := a.blkType(ctx, dev, true)
	if err != nil {
		return false, err
	}
	if t != "gpt" {
		if t != "" && !a.wipe(st) {
			return false, mismatch(st.Node, fmt.Sprintf("%s holds %q, the layout wants a gpt partition table", dev, t))
		}
		w.clear, w.foreign, w.create = true, t, g.Table.Partitions
		return false, nil
	}
	// On a kept disk, read the table without opening the disk for
	// writing: sgdisk does, and udev answers the close with a change
	// event on which mdadm --incremental assembles stopped arrays.
	var table map[int]*partInfo
	if st.Kept {
		if table, err = a.partTable(ctx, dev); err != nil {
			return false, err
		}
	}
	for _, pt := range g.Table.Partitions {
		var pi *partInfo
		if st.Kept {
			pi = table[pt.Index]
		} else {
			pi, err = a.partInfo(ctx, dev, pt.Index)
		}
		if err != nil || pi == nil {
			w.create = append(w.create, pt)
			continue
		}
		if d := partDiff(pi, pt); d != "" {
			if !a.wipe(st) {
				return false, mismatch(pt.Path, fmt.Sprintf("partition %d of %s has %s", pt.Index, dev, d))
			}
			w.del = append(w.del, pt.Index)
			w.create = append(w.create, pt)
		}
	}
	return len(w.create) == 0, nil
}

// fresh are the partition nodes this step will create (for Apply's
// look-ahead: their content need not be checked).
func (g *GPT) fresh(dev string) []string {
	var out []string
	if g.work != nil {
		for _, pt := range g.work.create {
			out = append(out, PartNode(dev, pt.Index))
		}
	}
	return out
}

func (g *GPT) act(ctx context.Context, a *applier, st *Step) error {
	w := g.work
	dev := a.resolve(ctx, st.Device)
	if w.foreign != "" {
		if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", dev}); err != nil {
			return err
		}
	}
	// Partitions with their own alignment get a call each, as in disko:
	// sgdisk's --set-alignment holds for the rest of its command line.
	var groups [][]*Partition
	var cur []*Partition
	for _, pt := range w.create {
		if pt.Alignment != 0 {
			if cur != nil {
				groups = append(groups, cur)
				cur = nil
			}
			groups = append(groups, []*Partition{pt})
			continue
		}
		cur = append(cur, pt)
	}
	if cur != nil || len(groups) == 0 {
		groups = append(groups, cur)
	}
	for i, grp := range groups {
		args := []string{"sgdisk"}
		if i == 0 {
			if w.clear {
				args = append(args, "--clear")
			}
			for _, n := range w.del {
				args = append(args, "--delete="+strconv.Itoa(n))
			}
		}
		args = append(args, "--align-end")
		for _, pt := range grp {
			args = append(args, PartArgs(pt)...)
		}
		if err := a.run(ctx, st, append(args, dev)); err != nil {
			return err
		}
	}
	return nil
}

func (g *GPT) verify(ctx context.Context, a *applier, st *Step) error {
	dev := a.resolve(ctx, st.Device)
	for _, pt := range g.Table.Partitions {
		pi, err := a.partInfo(ctx, dev, pt.Index)
		if err != nil || pi == nil {
			return fmt.Errorf("partition %d missing on %s after sgdisk: %w", pt.Index, dev, ErrVerify)
		}
		if d := partDiff(pi, pt); d != "" {
			return fmt.Errorf("partition %d of %s has %s: %w", pt.Index, dev, d, ErrVerify)
		}
	}
	return nil
}

// typeGUIDs maps sgdisk codes to GPT type GUIDs for verification.
var typeGUIDs = map[string]string{
	"EF00": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
	"EF02": "21686148-6449-6E6F-744E-656564454649",
	"8300": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
	"8200": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
	"FD00": "A19D880F-05FC-4D3B-A006-743F0F84911E",
	"8E00": "E6D6D379-F507-44C2-A23C-238F2A3DF928",
	"8309": "CA7D7CCB-63ED-4C53-861C-1742536059CC",
	"0700": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
	"8304": "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
	"8302": "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
	"EA00": "BC13C2FF-59E6-4262-A352-B275FD6F7172",
}

// partDiff names how an existing partition differs from pt, "" if it matches.
func partDiff(pi *partInfo, pt *Partition) string {
	var d []string
	if pi.Name != pt.Label {
		d = append(d, fmt.Sprintf("name %q, want %q", pi.Name, pt.Label))
	}
	want := strings.ToUpper(pt.TypeCode)
	if g, ok := typeGUIDs[want]; ok {
		want = g
	}
	if len(want) == 36 && !strings.EqualFold(pi.TypeGUID, want) {
		d = append(d, fmt.Sprintf("type %s, want %s (%s)", pi.TypeGUID, want, pt.TypeCode))
	}
	if b := pt.Bytes(); b > 0 {
		got := (pi.Last - pi.First + 1) * 512
		// --align-end rounds the end down to 1 MiB.
		if got > b || got < b-(1<<20) {
			d = append(d, fmt.Sprintf("size %d bytes, want %s (%d bytes)", got, pt.Size, b))
		}
	}
	if pt.Alignment == 0 && pt.Start == "0" && pi.First%2048 != 0 {
		d = append(d, fmt.Sprintf("start sector %d not 1 MiB aligned", pi.First))
	}
	return strings.Join(d, "; ")
}

// Probe makes sure the kernel has nodes for a table's partitions: with
// udev, trigger and settle once; without, ask the kernel to reread the
// table when a node is missing or stale. Nodes are checked through sysfs
// against the table on the disk (partx).
type Probe struct {
	Parts []int
	Table bool // a legacy table (the kernel may need longer to see it)
	// kept: on a kept disk, nothing was written, so there is nothing to
	// probe when the kernel's nodes match the table already.
	kept bool
	passive
}

func (*Probe) Kind() string { return "probe" }

func (pr *Probe) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	if !pr.kept {
		return false, nil
	}
	m, err := a.staleParts(ctx, a.kernelNode(ctx, st.DiskDev), pr.Parts)
	return err == nil && len(m) == 0, nil
}

func (pr *Probe) act(ctx context.Context, a *applier, st *Step) error {
	disk := a.kernelNode(ctx, st.DiskDev)
	if a.udev {
		// Only this disk's devices: a trigger on every block device
		// makes udev assemble stale md arrays found on other disks.
		if _, err := a.out(ctx, "udevadm", "trigger", "--subsystem-match=block", "--sysname-match="+path.Base(disk)+"*"); err != nil {
			return err
		}
		if _, err := a.out(ctx, "udevadm", "settle"); err != nil {
			return err
		}
	}
	if m, err := a.staleParts(ctx, disk, pr.Parts); err == nil && len(m) == 0 {
		return nil
	}
	// BLKRRPART is a no-op on some kernels for loop devices, and fails
	// while a partition is busy: partx updates the kernel's view
	// partition by partition.
	a.out(ctx, "blockdev", "--rereadpt", disk)
	a.out(ctx, "partx", "-u", disk)
	if m, err := a.staleParts(ctx, disk, pr.Parts); err != nil || len(m) > 0 {
		a.out(ctx, "partx", "-a", disk)
	}
	if a.udev {
		a.out(ctx, "udevadm", "settle")
	}
	return nil
}

func (pr *Probe) verify(ctx context.Context, a *applier, st *Step) error {
	disk := a.kernelNode(ctx, st.DiskDev)
	m, err := a.staleParts(ctx, disk, pr.Parts)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return fmt.Errorf("partition nodes %s missing or stale after rereading the table of %s: %w", strings.Join(m, ", "), disk, ErrVerify)
	}
	return nil
}

// staleParts lists the partitions of disk (a kernel node) among nums whose
// node is absent, or whose start and size in sysfs differ from the table
// on the disk (partx), in one round trip.
func (a *applier) staleParts(ctx context.Context, disk string, nums []int) ([]string, error) {
	script := `partx -g -r -o NR,START,SECTORS "$1" 2>/dev/null | sed 's/^/table /'
cd /sys/class/block/"${1##*/}" 2>/dev/null || exit 0
for p in *; do
  [ -e "$p/partition" ] || continue
  if [ -b "/dev/$p" ]; then b=1; else b=0; fi
  echo "sys $p $(cat "$p/partition") $(cat "$p/start") $(cat "$p/size") $b"
done`
	out, err := a.out(ctx, "sh", "-c", script, "fleet-probe", disk)
	if err != nil {
		return nil, err
	}
	table := map[string][2]string{} // number -> start, sectors
	sys := map[string][4]string{}   // number -> node, start, size, present
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "table":
			table[f[1]] = [2]string{f[2], f[3]}
		case len(f) == 6 && f[0] == "sys":
			sys[f[2]] = [4]string{f[1], f[3], f[4], f[5]}
		}
	}
	var stale []string
	for _, n := range nums {
		t, inTable := table[strconv.Itoa(n)]
		s, inSys := sys[strconv.Itoa(n)]
		if !inTable || !inSys || s[3] != "1" || s[1] != t[0] || s[2] != t[1] {
			node := PartNode(disk, n)
			if inSys {
				node = "/dev/" + s[0]
			}
			stale = append(stale, node)
		}
	}
	return stale, nil
}

// HybridMBR writes disko's hybrid MBR: sgdisk -h, then sfdisk for each
// hybrid partition's MBR type and boot flag; check and verify read the
// MBR back (sfdisk -J).
type HybridMBR struct {
	Table *Node
}

func (*HybridMBR) Kind() string { return "hybrid-mbr" }

// check: done when the MBR is what the commands make.
func (h *HybridMBR) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return h.verify(ctx, a, st) == nil, nil
}

func (h *HybridMBR) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (h *HybridMBR) verify(ctx context.Context, a *applier, st *Step) error {
	dev := a.resolve(ctx, st.Device)
	out, err := a.out(ctx, "sfdisk", "--label-nested", "dos", "-J", dev)
	if err != nil {
		return err
	}
	var mbr struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Start    int64  `json:"start"`
				Size     int64  `json:"size"`
				Type     string `json:"type"`
				Bootable bool   `json:"bootable"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &mbr); err != nil || mbr.PartitionTable.Label != "dos" {
		return fmt.Errorf("no hybrid MBR on %s after sgdisk -h: %w", dev, ErrVerify)
	}
	parts := mbr.PartitionTable.Partitions
	hybrids := 0
	for _, pt := range h.Table.Partitions {
		if pt.Hybrid == nil {
			continue
		}
		hybrids++
		if pt.Hybrid.MBRType == "" && !pt.Hybrid.Bootable {
			continue
		}
		// disko's sfdisk calls address MBR entry number INDEX.
		if pt.Index > len(parts) {
			return fmt.Errorf("the MBR of %s has %d entries, no entry %d: %w", dev, len(parts), pt.Index, ErrVerify)
		}
		e := parts[pt.Index-1]
		if t := pt.Hybrid.MBRType; t != "" && mbrHex(t) != mbrHex(e.Type) {
			return fmt.Errorf("MBR entry %d of %s has type %s, want %s: %w", pt.Index, dev, e.Type, t, ErrVerify)
		}
		if pt.Hybrid.Bootable && !e.Bootable {
			return fmt.Errorf("MBR entry %d of %s is not bootable: %w", pt.Index, dev, ErrVerify)
		}
	}
	if len(parts) != hybrids+1 {
		return fmt.Errorf("the MBR of %s has %d entries, want %d (the hybrid partitions and the gpt's): %w", dev, len(parts), hybrids+1, ErrVerify)
	}
	return nil
}

// mbrHex normalizes an MBR type code: 0x0c, 0C and c are one.
func mbrHex(t string) string {
	t = strings.TrimPrefix(strings.ToLower(t), "0x")
	return strings.TrimLeft(t, "0")
}
