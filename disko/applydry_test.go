package disko

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// luksNames are the layout's LUKS mapper names.
func luksNames(s *Spec) []string {
	var out []string
	var walk func(n *Node)
	walk = func(n *Node) {
		if n == nil {
			return
		}
		if n.Type == "luks" {
			out = append(out, n.Name)
		}
		for _, pt := range n.Partitions {
			walk(pt.Content)
		}
		for _, tp := range n.TableParts {
			walk(tp.Content)
		}
		for _, lv := range n.LVs {
			walk(lv.Content)
		}
		walk(n.Content)
	}
	for _, top := range s.Top() {
		walk(top)
	}
	return out
}

// zfsKeys are keys for the layout's zfs encryption roots, each of the
// form its keyformat takes.
func zfsKeys(s *Spec) map[string][]byte {
	keys := map[string][]byte{}
	for _, z := range s.Zpools {
		for _, ds := range z.Datasets {
			if ds.EncryptionRoot() {
				keys[ds.Name] = map[string][]byte{"passphrase": []byte("correct horse battery\n"),
					"hex": []byte(strings.Repeat("0f", 32) + "\n"), "raw": []byte(strings.Repeat("k", 32))}[ds.Options["keyformat"]]
			}
		}
	}
	return keys
}

// dryApply runs the install's sequence of modes on a dry machine whose
// disks are the layout's (size bytes each).
func dryApply(t *testing.T, s *Spec, size int64, udev bool) (*dryMachine, error) {
	t.Helper()
	disks := map[string]int64{}
	for _, d := range s.Disks {
		disks[d.Device] = size
	}
	m := newDryMachine(disks)
	m.noUdev = !udev
	keys := map[string][]byte{}
	for _, n := range luksNames(s) {
		keys[n] = []byte("key")
	}
	for name, k := range zfsKeys(s) {
		keys[name] = k
	}
	for _, mode := range []Mode{ModeDestroyFormatMount, {Format: true}, ModeUnmount, ModeMount, ModeFormatMount, ModeUnmount} {
		if err := Apply(context.Background(), m, s, ApplyOptions{Mode: mode, Yes: true, Keys: keys}); err != nil {
			return m, err
		}
	}
	return m, nil
}

// TestApplyDry applies every differential layout (and, with
// FLEET_DISKOEVAL, disko's own examples) on a dry machine through the
// install's sequence of modes, with udev and without (no /dev/md links:
// md devices are found by name): every step checks, acts and verifies,
// and Apply runs only commands the dry machine knows.
func TestApplyDry(t *testing.T) {
	for name, g := range loadGoldens(t) {
		if strings.HasPrefix(name, "refused-") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			s, err := Parse(g.User)
			if err != nil {
				t.Fatal(err)
			}
			for _, udev := range []bool{true, false} {
				m, err := dryApply(t, s, 64<<30, udev)
				if err != nil {
					t.Fatalf("udev %v: %v\nlast commands:\n%s", udev, err, strings.Join(tail(m.cmds, 15), "\n"))
				}
				if len(m.unknown) > 0 {
					t.Fatalf("udev %v: commands the dry machine does not know: %q", udev, m.unknown)
				}
			}
		})
	}
}

func tail(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

var _ remote.Runner = (*dryMachine)(nil)

// TestProgress: Apply calls Progress as each step starts, with the steps
// done so far, the total and the step, so a terminal can draw
// "disko: step k of n".
func TestProgress(t *testing.T) {
	s, err := Parse([]byte(`{"disk":{"main":{"type":"disk","device":"/dev/vda","content":{"type":"gpt","partitions":{
	  "ESP":{"size":"64M","type":"EF00","content":{"type":"filesystem","format":"vfat","mountpoint":"/boot"}},
	  "root":{"size":"100%","content":{"type":"filesystem","format":"ext4","mountpoint":"/"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := newDryMachine(map[string]int64{"/dev/vda": 8 << 30})
	var got []string
	err = Apply(context.Background(), m, s, ApplyOptions{Mode: ModeFormatMount, Progress: func(done, total int, step string) {
		got = append(got, fmt.Sprintf("%d/%d %s", done, total, step))
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0/6 format partition disk.main.content",
		"1/6 format probe disk.main.content",
		"2/6 format mkfs disk.main.content.partitions.ESP.content",
		"3/6 format mkfs disk.main.content.partitions.root.content",
		"4/6 mount mount disk.main.content.partitions.root.content",
		"5/6 mount mount disk.main.content.partitions.ESP.content",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("progress:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
