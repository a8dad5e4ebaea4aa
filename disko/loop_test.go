package disko

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/fleetnix/fleet/remote"
)

// needRoot skips tests that need root and loop devices.
func needRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t, "loop devices, mkfs and mount (CI runs as root)")
	testenv.Programs(t, "sgdisk")
}

// loopDisk makes a sparse image of size bytes, attaches it with partition
// scanning and detaches it (after unmounting anything on it) at cleanup.
func loopDisk(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("losetup", "-fP", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		// Unmount anything still on the loop device, deepest first.
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		lines := strings.Split(string(mi), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			pre, post, ok := strings.Cut(lines[i], " - ")
			f, g := strings.Fields(pre), strings.Fields(post)
			if ok && len(f) > 4 && len(g) > 1 && strings.HasPrefix(g[1], dev) {
				exec.Command("umount", "-l", f[4]).Run()
			}
		}
		sw, _ := os.ReadFile("/proc/swaps")
		for _, l := range strings.Split(string(sw), "\n") {
			if fs := strings.Fields(l); len(fs) > 0 && strings.HasPrefix(fs[0], dev) {
				exec.Command("swapoff", fs[0]).Run()
			}
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func loadTestSpec(t *testing.T, name string) *Spec {
	t.Helper()
	s, err := Load(context.Background(), &remote.Local{}, filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// applyMode runs Apply for mode on r with disk main at dev.
func applyMode(ctx context.Context, r remote.Runner, s *Spec, mode, root string, devs map[string]string) error {
	m, err := ParseMode(mode)
	if err != nil {
		return err
	}
	return Apply(ctx, r, s, ApplyOptions{Mode: m, Yes: true, Plan: Options{Root: root, Devices: devs}})
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	return runOn(t, &remote.Local{}, args...)
}

// runOn runs a checking command through r, so the checks can point at the
// VM rig over SSH later.
func runOn(t *testing.T, r remote.Runner, args ...string) string {
	t.Helper()
	res, err := r.Run(context.Background(), remote.Cmd{Args: args})
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return string(res.Stdout)
}

// mountsUnder lists "target fstype source root" for mounts under root.
func mountsUnder(t *testing.T, r remote.Runner, root string) []string {
	t.Helper()
	mi := runOn(t, r, "cat", "/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(mi, "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 {
			continue
		}
		if f[4] == root || strings.HasPrefix(f[4], root+"/") {
			out = append(out, strings.TrimPrefix(f[4], root)+" "+g[0]+" "+g[1]+" "+f[3])
		}
	}
	return out
}

// verifyLayout checks the loop.json layout on dev with sgdisk and blkid.
func verifyLayout(t *testing.T, r remote.Runner, dev string) {
	t.Helper()
	want := []struct {
		n              string
		name, guid, fs string
		sectors        string
	}{
		{"1", "disk-main-ESP", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "vfat", "131072"},
		{"2", "disk-main-data", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "xfs", "655360"},
		{"3", "disk-main-root", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "ext4", "524288"},
		{"4", "disk-main-swap", "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "swap", "131072"},
		{"5", "disk-main-pool", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "btrfs", ""},
	}
	for _, w := range want {
		info := runOn(t, r, "sgdisk", "-i", w.n, dev)
		if !strings.Contains(info, "Partition name: '"+w.name+"'") || !strings.Contains(info, "Partition GUID code: "+w.guid) {
			t.Errorf("partition %s: want name %s type %s, sgdisk says:\n%s", w.n, w.name, w.guid, info)
		}
		if w.sectors != "" && !strings.Contains(info, "Partition size: "+w.sectors+" sectors") {
			t.Errorf("partition %s: want %s sectors, sgdisk says:\n%s", w.n, w.sectors, info)
		}
		typ := strings.TrimSpace(runOn(t, r, "blkid", "-p", "-s", "TYPE", "-o", "value", dev+"p"+w.n))
		if typ != w.fs {
			t.Errorf("partition %s: blkid TYPE %q, want %q", w.n, typ, w.fs)
		}
		if got := strings.TrimSpace(runOn(t, r, "blkid", "-t", "PARTLABEL="+w.name, "-o", "device")); !strings.HasPrefix(got, dev+"p"+w.n) {
			t.Errorf("blkid finds PARTLABEL=%s at %q, want %sp%s", w.name, got, dev, w.n)
		}
	}
}

// TestDiskoSequence runs disko's own test sequence on a loop device.
func TestDiskoSequence(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dev := loopDisk(t, 1<<30)
	root := t.TempDir()
	s := loadTestSpec(t, "loop.json")
	devs := map[string]string{"main": dev}
	r := &remote.Local{}
	wantMounts := []string{
		" ext4 " + dev + "p3 /",
		"/data xfs " + dev + "p2 /",
		"/home btrfs " + dev + "p5 /@home",
		"/nix btrfs " + dev + "p5 /@nix",
		"/tmp tmpfs tmpfs /",
	}
	checkMounted := func(step string) {
		t.Helper()
		got := mountsUnder(t, r, root)
		if strings.Join(got, "\n") != strings.Join(wantMounts, "\n") {
			t.Fatalf("after %s: mounts under root:\n%s\nwant:\n%s", step, strings.Join(got, "\n"), strings.Join(wantMounts, "\n"))
		}
	}
	checkUnmounted := func(step string) {
		t.Helper()
		if got := mountsUnder(t, r, root); len(got) != 0 {
			t.Fatalf("after %s: still mounted: %v", step, got)
		}
	}
	seq := []struct {
		mode  string
		check func(string)
	}{
		{"format", func(string) { verifyLayout(t, r, dev) }},
		{"mount", checkMounted},
		{"mount", checkMounted},
		{"unmount", checkUnmounted},
		{"unmount", checkUnmounted},
		{"mount", checkMounted},
		{"destroy,format,mount", checkMounted},
	}
	for i, st := range seq {
		if err := applyMode(ctx, r, s, st.mode, root, devs); err != nil {
			t.Fatalf("step %d (%s): %v", i+1, st.mode, err)
		}
		st.check(st.mode)
	}
	verifyLayout(t, r, dev)
	if err := os.WriteFile(filepath.Join(root, "home", "keep"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyMode(ctx, r, s, "format", root, devs); err != nil {
		t.Fatalf("format again: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "home", "keep")); err != nil || string(b) != "data" {
		t.Fatalf("file after format again: %q, %v", b, err)
	}
	checkMounted("format again")
	if err := applyMode(ctx, r, s, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
	checkUnmounted("final unmount")
	// The file survives an unmount and mount too.
	if err := applyMode(ctx, r, s, "mount", root, devs); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "home", "keep")); err != nil || string(b) != "data" {
		t.Fatalf("file after remount: %q, %v", b, err)
	}
	if err := applyMode(ctx, r, s, "unmount", root, devs); err != nil {
		t.Fatal(err)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
