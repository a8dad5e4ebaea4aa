package disko

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Table writes a legacy table with parted, as disko does: the label
// (msdos or gpt), each partition in list order (mkpart), its boot flag
// and flags. check keeps a table of the same kind with the same
// partitions (number, and name for gpt); anything else on the disk is a
// mismatch unless wiping. verify reads the table back with partx.
type Table struct {
	Table   *Node
	foreign string // what check found instead, to wipe first
}

func (*Table) Kind() string { return "table" }

// ptType is blkid's PTTYPE for the table's format.
func (t *Table) ptType() string {
	if t.Table.TableFormat == "msdos" {
		return "dos"
	}
	return "gpt"
}

// tableEntry is one partition as partx reads it from the disk.
type tableEntry struct {
	nr, name, flags string
}

func (a *applier) partx(ctx context.Context, dev string) ([]tableEntry, error) {
	out, err := a.out(ctx, "partx", "-g", "-r", "-o", "NR,FLAGS,NAME", dev)
	if err != nil {
		return nil, err
	}
	var es []tableEntry
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, " ", 3)
		if len(f) < 2 {
			continue
		}
		e := tableEntry{nr: f[0], flags: f[1]}
		if len(f) == 3 {
			e.name = unescapeLsblk(f[2])
		}
		es = append(es, e)
	}
	return es, nil
}

// unescapeLsblk undoes util-linux's raw-output escaping (\x20 for a space).
func unescapeLsblk(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// diff names how the table on the disk differs from the layout, "" for none.
func (t *Table) diff(es []tableEntry) string {
	if len(es) != len(t.Table.TableParts) {
		return fmt.Sprintf("%d partitions, the layout has %d", len(es), len(t.Table.TableParts))
	}
	for i, tp := range t.Table.TableParts {
		e := es[i]
		if e.nr != strconv.Itoa(tp.Index) {
			return fmt.Sprintf("partition %s where the layout has %d", e.nr, tp.Index)
		}
		if t.Table.TableFormat == "gpt" && e.name != udevEscape(tp.Name) {
			return fmt.Sprintf("partition %d named %q, want %q", tp.Index, e.name, udevEscape(tp.Name))
		}
		if t.Table.TableFormat == "msdos" && tp.Bootable != (e.flags == "0x80") {
			return fmt.Sprintf("partition %d with flags %s, want bootable=%v", tp.Index, e.flags, tp.Bootable)
		}
	}
	return ""
}

func (t *Table) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	t.foreign = ""
	dev := a.resolve(ctx, st.Device)
	pt, err := a.blkType(ctx, dev, true)
	if err != nil || pt == "" {
		return false, err
	}
	d := fmt.Sprintf("%s holds %q, the layout wants a %s table", dev, pt, t.Table.TableFormat)
	if pt == t.ptType() {
		es, err := a.partx(ctx, dev)
		if err != nil {
			return false, err
		}
		if d = t.diff(es); d == "" {
			return true, nil
		}
		d = fmt.Sprintf("the %s table of %s has %s", t.Table.TableFormat, dev, d)
	}
	if !a.wipe(st) {
		return false, mismatch(st.Node, d)
	}
	t.foreign = pt
	return false, nil
}

// fresh: a table that is (re)written makes all its partitions new.
func (t *Table) fresh(dev string) []string {
	var out []string
	for _, tp := range t.Table.TableParts {
		out = append(out, PartNode(dev, tp.Index))
	}
	return out
}

func (t *Table) act(ctx context.Context, a *applier, st *Step) error {
	if t.foreign != "" {
		if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", a.resolve(ctx, st.Device)}); err != nil {
			return err
		}
	}
	return a.runCmds(ctx, st)
}

func (t *Table) verify(ctx context.Context, a *applier, st *Step) error {
	dev := a.resolve(ctx, st.Device)
	if pt, err := a.blkType(ctx, dev, true); err != nil || pt != t.ptType() {
		return fmt.Errorf("blkid finds %q on %s after parted, want %s: %w", pt, dev, t.ptType(), ErrVerify)
	}
	es, err := a.partx(ctx, dev)
	if err != nil {
		return err
	}
	if d := t.diff(es); d != "" {
		return fmt.Errorf("%s after parted has %s: %w", dev, d, ErrVerify)
	}
	return nil
}
