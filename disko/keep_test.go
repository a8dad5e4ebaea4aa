package disko

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/testenv"
)

// keepLayout is a NAS the host kernel can lay out on loop devices: a
// system disk, and two data disks with ext4 and xfs.
const keepLayout = `{"disk": {
  "sys": {"type": "disk", "device": "/dev/disk/by-id/sys", "content": {"type": "gpt", "partitions": {
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "data1": {"type": "disk", "device": "/dev/disk/by-id/data1", "content": {"type": "gpt", "partitions": {
    "meta": {"size": "32M", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv/meta"}},
    "data": {"size": "100%", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}},
  "data2": {"type": "disk", "device": "/dev/disk/by-id/data2", "content": {"type": "gpt", "partitions": {
    "data": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/srv/more"}}}}}
}}`

// keepLoops attaches the three disks of keepLayout as loop devices.
func keepLoops(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{"sys": loopDisk(t, 64<<20), "data1": loopDisk(t, 400<<20), "data2": loopDisk(t, 64<<20)}
}

func applyKeep(ctx context.Context, s *Spec, mode, root string, devs map[string]string, keep ...string) error {
	m, err := ParseMode(mode)
	if err != nil {
		return err
	}
	return Apply(ctx, &remote.Local{}, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: root, Devices: devs, Keep: keep}})
}

// gptBytes is the sha256 of a disk's primary and backup GPT (the first
// and last 34 sectors): what partitioning writes.
func gptBytes(t *testing.T, dev string) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	end, err := f.Seek(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 34*512)
	for _, off := range []int64{0, end - 34*512} {
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fsUUID(t *testing.T, dev string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "blkid", "-p", "-s", "UUID", "-o", "value", dev))
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestKeepOnLoop reinstalls the layout with its data disks kept: the
// system disk is erased and made again, the kept disks' partition tables
// are the same bytes, their filesystems the same (UUIDs) with the same
// files, and mounted where the layout says.
func TestKeepOnLoop(t *testing.T) {
	needRoot(t)
	testenv.Programs(t, "mkfs.xfs", "mkfs.ext4", "partx", "blkid", "wipefs")
	ctx := context.Background()
	s, err := Parse([]byte(keepLayout))
	if err != nil {
		t.Fatal(err)
	}
	devs := keepLoops(t)
	root := t.TempDir()
	if err := applyKeep(ctx, s, "destroy,format,mount", root, devs); err != nil {
		t.Fatalf("first install: %v", err)
	}
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, p := range []string{"srv/data/file", "srv/meta/file", "srv/more/file", "file"} {
		if err := os.WriteFile(filepath.Join(root, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := fileSum(t, filepath.Join(root, "srv/data/file"))
	if err := applyKeep(ctx, s, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
	kept := map[string]string{}
	for _, p := range []string{devs["data1"] + "p1", devs["data1"] + "p2", devs["data2"] + "p1"} {
		kept[p] = fsUUID(t, p)
	}
	tables := map[string]string{"data1": gptBytes(t, devs["data1"]), "data2": gptBytes(t, devs["data2"])}
	sysUUID := fsUUID(t, devs["sys"]+"p1")

	// The plan writes nothing to a kept disk: its steps there check,
	// probe and mount.
	steps, err := BuildPlan(s, ModeDestroyFormatMount, Options{Root: root, Devices: devs, Keep: []string{"data1", "data2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range flatten(steps) {
		if _, ok := st.Action.(activator); st.Kept && !ok {
			continue // checks only: its commands never run
		}
		for _, c := range st.Cmds {
			line := strings.Join(c, " ")
			for _, name := range []string{"data1", "data2"} {
				if strings.Contains(line, devs[name]) && !slices.Contains([]string{"mount", "umount"}, c[0]) {
					t.Errorf("step %s runs %q on kept disk %s", st.String(), line, name)
				}
			}
		}
	}

	if err := applyKeep(ctx, s, "destroy,format,mount", root, devs, "data1", "data2"); err != nil {
		t.Fatalf("reinstall keeping data1, data2: %v", err)
	}
	if got := fileSum(t, filepath.Join(root, "srv/data/file")); got != sum {
		t.Fatalf("kept file's sha256 %s, was %s", got, sum)
	}
	for _, p := range []string{"srv/meta/file", "srv/more/file"} {
		if got := fileSum(t, filepath.Join(root, p)); got != sum {
			t.Errorf("%s changed", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "file")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the system disk was not made again: /file is still there (%v)", err)
	}
	for p, uuid := range kept {
		if got := fsUUID(t, p); got != uuid {
			t.Errorf("%s: filesystem UUID %s, was %s: it was made again", p, got, uuid)
		}
	}
	for name, sum := range tables {
		if got := gptBytes(t, devs[name]); got != sum {
			t.Errorf("the partition table of kept disk %s changed", name)
		}
	}
	if got := fsUUID(t, devs["sys"]+"p1"); got == sysUUID || got == "" {
		t.Errorf("system disk's root UUID %q, was %q: want a new filesystem", got, sysUUID)
	}
	want := []string{
		" ext4 " + devs["sys"] + "p1 /",
		"/srv/data xfs " + devs["data1"] + "p2 /",
		"/srv/meta ext4 " + devs["data1"] + "p1 /",
		"/srv/more ext4 " + devs["data2"] + "p1 /",
	}
	if got := mountsUnder(t, &remote.Local{}, root); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("mounts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Mount mode and format mode keep them too.
	for _, mode := range []string{"unmount", "mount", "unmount", "format,mount", "unmount"} {
		if err := applyKeep(ctx, s, mode, root, devs, "data1", "data2"); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	for p, uuid := range kept {
		if got := fsUUID(t, p); got != uuid {
			t.Errorf("%s: filesystem UUID %s, was %s", p, got, uuid)
		}
	}
}

// TestKeepRefusalsOnLoop: a kept disk that is not the layout's is
// refused by name before anything is written, and nothing is.
func TestKeepRefusalsOnLoop(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s, err := Parse([]byte(keepLayout))
	if err != nil {
		t.Fatal(err)
	}
	hint := "\nhint: fleet never writes to a kept device: check that --keep names the disks holding the data (and --device where they are), or leave a disk out of --keep to erase it"
	// state is what the disks hold: partition tables and signatures.
	state := func(devs map[string]string) string {
		var b strings.Builder
		for _, name := range []string{"sys", "data1", "data2"} {
			b.WriteString(gptBytes(t, devs[name]))
			out, _ := (&remote.Local{}).Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `blkid -p "$1"* || true`, "x", devs[name]}})
			b.Write(out.Stdout)
		}
		return b.String()
	}
	refused := func(t *testing.T, devs map[string]string, want string, keep ...string) {
		t.Helper()
		before := state(devs)
		err := applyKeep(ctx, s, "destroy,format,mount", t.TempDir(), devs, keep...)
		if err == nil || err.Error() != want || !errors.Is(err, ErrRefused) || !errors.Is(err, ErrKeep) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		if after := state(devs); after != before {
			t.Fatalf("the disks changed:\n%s\nwant:\n%s", after, before)
		}
	}

	t.Run("unknown disk", func(t *testing.T) {
		devs := keepLoops(t)
		refused(t, devs, `--keep data1,data3: the layout has no disk "data3" (its disks: data1, data2, sys): unknown disk: no changes made`+
			"\nhint: name the layout's disks, as in --keep data1,data2,sys", "data1", "data3")
		if !errors.Is(ValidateKeep(s, []string{"data3"}), ErrUnknownDisk) {
			t.Fatal("ValidateKeep does not say unknown disk")
		}
	})

	t.Run("blank", func(t *testing.T) {
		devs := keepLoops(t)
		refused(t, devs, `keep disk "data1" (`+devs["data1"]+`): disk.data1.content: `+devs["data1"]+` is blank: blkid finds no partition table, the layout wants gpt: existing layout does not match: no changes made`+hint, "data1", "data2")
	})

	t.Run("foreign", func(t *testing.T) {
		devs := keepLoops(t)
		// data1 and data2 as another machine's layout laid them out.
		other, err := Parse([]byte(strings.ReplaceAll(keepLayout, `"data1": {`, `"other": {`)))
		if err != nil {
			t.Fatal(err)
		}
		od := map[string]string{"sys": devs["sys"], "other": devs["data1"], "data2": devs["data2"]}
		if err := applyKeep(ctx, other, "destroy,format", "", od); err != nil {
			t.Fatal(err)
		}
		run(t, "wipefs", "-a", devs["sys"]+"p1")
		run(t, "sgdisk", "--zap-all", devs["sys"])
		refused(t, devs, `keep disk "data1" (`+devs["data1"]+`): disk.data1.content.partitions.meta: partition 1 of `+devs["data1"]+` has name "disk-other-meta", want "disk-data1-meta": existing layout does not match: no changes made`+hint, "data1", "data2")
	})

	t.Run("other filesystem", func(t *testing.T) {
		devs := keepLoops(t)
		ext4, err := Parse([]byte(strings.Replace(keepLayout, `"format": "xfs"`, `"format": "ext4"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := applyKeep(ctx, ext4, "destroy,format", "", devs); err != nil {
			t.Fatal(err)
		}
		refused(t, devs, `keep disk "data1" (`+devs["data1"]+`): disk.data1.content.partitions.data.content: `+devs["data1"]+`p2 holds ext4, the layout wants xfs: existing layout does not match: no changes made`+hint, "data1")
	})
}

// mdLayout is the example's nas: a system disk and an md raid1 on two.
const mdLayout = `{"disk": {
  "main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
    "root": {"size": "100%", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}},
  "data1": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}},
  "data2": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {
    "raid": {"size": "100%", "content": {"type": "mdraid", "name": "data"}}}}}},
 "mdadm": {"data": {"type": "mdadm", "level": 1, "content": {"type": "lvm_pv", "vg": "pool"}}},
 "lvm_vg": {"pool": {"type": "lvm_vg", "lvs": {"srv": {"size": "100%FREE", "content": {"type": "filesystem", "format": "xfs", "mountpoint": "/srv/data"}}}}}}`

// TestKeepPlan: what a plan keeps follows the devices built on the kept
// disks; an array on a kept and a written disk is refused by name.
func TestKeepPlan(t *testing.T) {
	s, err := Parse([]byte(mdLayout))
	if err != nil {
		t.Fatal(err)
	}
	err = ValidateKeep(s, []string{"data1"})
	want := "--keep data1: mdadm.data is built on disk.data1 (kept) and disk.data2 (not kept): cannot keep: no changes made\nhint: keep all of them (--keep data1,data2) or none of them"
	if err == nil || err.Error() != want || !errors.Is(err, ErrKeepSpans) || !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if _, err := BuildPlan(s, ModeDestroyFormatMount, Options{Keep: []string{"data2"}}); !errors.Is(err, ErrKeepSpans) {
		t.Fatalf("BuildPlan: %v", err)
	}
	steps, err := BuildPlan(s, ModeDestroyFormatMount, Options{Keep: []string{"data1", "data2"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range steps {
		line := st.String()
		for _, c := range st.Cmds {
			line += "; " + strings.Join(c, " ")
		}
		got = append(got, line)
	}
	wantSteps := []string{
		"unmount umount lvm_vg.pool.lvs.srv.content; umount /mnt/srv/data",
		"unmount umount disk.main.content.partitions.root.content; umount /mnt",
		"destroy wipe disk.main; wipefs --all -f /dev/vda",
		"keep check disk.data1",
		"keep check disk.data2",
		"keep check mdadm.data; mdadm --assemble /dev/md/data /dev/vdb1 /dev/vdc1",
		"keep check lvm_vg.pool; vgchange -a y pool",
		"format partition disk.main.content; sgdisk --clear --align-end --new=1:0:-0 --change-name=1:disk-main-root --typecode=1:8300 /dev/vda",
		"format probe disk.main.content",
		"format mkfs disk.main.content.partitions.root.content; mkfs.ext4 /dev/vda1",
		"mount mdassemble mdadm.data; mdadm --assemble /dev/md/data /dev/vdb1 /dev/vdc1",
		"mount vgchange lvm_vg.pool; vgchange -a y pool",
		"mount mount disk.main.content.partitions.root.content; mount -t ext4 -o defaults -o X-mount.mkdir /dev/vda1 /mnt",
		"mount mount lvm_vg.pool.lvs.srv.content; mount -t xfs -o defaults -o X-mount.mkdir /dev/pool/srv /mnt/srv/data",
	}
	if strings.Join(got, "\n") != strings.Join(wantSteps, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantSteps, "\n"))
	}
	// The kept devices' checks: no sgdisk, mkfs, mdadm --create, pvcreate
	// or vgcreate among them that could run.
	for _, st := range steps {
		k, ok := st.Action.(*Keep)
		if !ok {
			continue
		}
		for _, in := range k.Steps {
			if _, act := in.Action.(activator); act {
				continue
			}
			if !in.Kept || in.Phase != PhaseKeep {
				t.Errorf("%s: not marked kept", in.String())
			}
		}
	}
	if b, _ := steps[3].MarshalJSON(); !bytes.Contains(b, []byte(`"kept":true`)) {
		t.Errorf("JSON of a keep step: %s", b)
	}
}
