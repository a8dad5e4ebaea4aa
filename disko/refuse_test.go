package disko

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
)

// untouched checks that blkid finds no partition table on dev.
func untouched(t *testing.T, dev string) {
	t.Helper()
	if out, err := exec.Command("blkid", "-p", dev).CombinedOutput(); err == nil {
		t.Errorf("%s was written to: blkid says %s", dev, out)
	}
}

func TestRefusals(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	r := &remote.Local{}
	small := loadTestSpec(t, "small.json")

	t.Run("missing device", func(t *testing.T) {
		err := applyMode(ctx, r, small, "destroy,format,mount", t.TempDir(), map[string]string{"main": "/dev/nonexistent-fleet"})
		want := `disk "main": /dev/nonexistent-fleet: device not found: no changes made` + "\nhint: check the device path or pass --device main=/dev/..."
		if err == nil || err.Error() != want || !errors.Is(err, ErrMissingDevice) || !errors.Is(err, ErrRefused) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
	})

	t.Run("too small", func(t *testing.T) {
		dev := loopDisk(t, 64<<20)
		err := applyMode(ctx, r, loadTestSpec(t, "big.json"), "destroy,format,mount", t.TempDir(), map[string]string{"main": dev})
		want := `disk "main" (` + dev + `): 67108864 bytes, the layout needs at least 2150629376: disk too small: no changes made`
		if err == nil || err.Error() != want || !errors.Is(err, ErrTooSmall) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		untouched(t, dev)
	})

	t.Run("destroy needs yes", func(t *testing.T) {
		dev := loopDisk(t, 64<<20)
		m, _ := ParseMode("destroy,format,mount")
		err := Apply(ctx, r, small, ApplyOptions{Mode: m, Plan: Options{Root: t.TempDir(), Devices: map[string]string{"main": dev}}})
		want := "destroy erases disks main: no changes made\nhint: pass --yes, or run at a terminal to confirm"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		err = Apply(ctx, r, small, ApplyOptions{Mode: m, Confirm: func(d []Target) bool { return false }, Plan: Options{Root: t.TempDir(), Devices: map[string]string{"main": dev}}})
		if err == nil || err.Error() != "destroy not confirmed: no changes made" {
			t.Fatalf("declined: got %v", err)
		}
		untouched(t, dev)
	})

	t.Run("mounted disk", func(t *testing.T) {
		dev := loopDisk(t, 64<<20)
		devs := map[string]string{"main": dev}
		if err := applyMode(ctx, r, small, "format", t.TempDir(), devs); err != nil {
			t.Fatal(err)
		}
		elsewhere := t.TempDir()
		run(t, "mount", dev+"p1", elsewhere)
		defer exec.Command("umount", elsewhere).Run()
		err := applyMode(ctx, r, small, "destroy,format,mount", t.TempDir(), devs)
		want := `disk "main" (` + dev + `): ` + dev + `p1 is mounted on ` + elsewhere + `: disk in use: no changes made` + "\nhint: unmount it first, or run with --mode unmount"
		if err == nil || err.Error() != want || !errors.Is(err, ErrInUse) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		if typ := strings.TrimSpace(run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", dev+"p1")); typ != "ext4" {
			t.Fatalf("filesystem changed to %q", typ)
		}
	})

	t.Run("format mismatch", func(t *testing.T) {
		dev := loopDisk(t, 200<<20)
		devs := map[string]string{"main": dev}
		if err := applyMode(ctx, r, small, "format", t.TempDir(), devs); err != nil {
			t.Fatal(err)
		}
		// Same partition, but the layout now wants btrfs.
		other, err := Parse([]byte(strings.Replace(readTestdata(t, "small.json"), `"format": "ext4"`, `"format": "btrfs"`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		err = applyMode(ctx, r, other, "format", t.TempDir(), devs)
		want := `disk.main.content.partitions.root.content: ` + dev + `p1 holds ext4, the layout wants btrfs: existing layout does not match: no changes made` + "\nhint: pass --wipe to replace it"
		if err == nil || err.Error() != want || !errors.Is(err, ErrMismatch) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		m, _ := ParseMode("format")
		if err := Apply(ctx, r, other, ApplyOptions{Mode: m, Wipe: true, Plan: Options{Root: t.TempDir(), Devices: devs}}); err != nil {
			t.Fatalf("with wipe: %v", err)
		}
		if typ := strings.TrimSpace(run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", dev+"p1")); typ != "btrfs" {
			t.Fatalf("after --wipe: %q, want btrfs", typ)
		}
	})

	t.Run("swap in use", func(t *testing.T) {
		dev := loopDisk(t, 64<<20)
		devs := map[string]string{"main": dev}
		sw, err := Parse([]byte(strings.Replace(readTestdata(t, "small.json"), `{"type": "filesystem", "format": "ext4", "mountpoint": "/"}`, `{"type": "swap"}`, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := applyMode(ctx, r, sw, "format", t.TempDir(), devs); err != nil {
			t.Fatal(err)
		}
		run(t, "swapon", dev+"p1")
		defer exec.Command("swapoff", dev+"p1").Run()
		err = applyMode(ctx, r, small, "destroy,format,mount", t.TempDir(), devs)
		want := `disk "main" (` + dev + `): ` + dev + `p1 is in use as swap: disk in use: no changes made` + "\nhint: swapoff it first"
		if err == nil || err.Error() != want || !errors.Is(err, ErrInUse) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
	})

	t.Run("partition mismatch", func(t *testing.T) {
		dev := loopDisk(t, 64<<20)
		devs := map[string]string{"main": dev}
		spec := func(size string) *Spec {
			s, err := Parse([]byte(strings.Replace(readTestdata(t, "big.json"), `"2G"`, `"`+size+`"`, 1)))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if err := applyMode(ctx, r, spec("16M"), "format", t.TempDir(), devs); err != nil {
			t.Fatal(err)
		}
		before := run(t, "sgdisk", "-p", dev)
		err := applyMode(ctx, r, spec("20M"), "format", t.TempDir(), devs)
		want := `disk.main.content.partitions.data: partition 1 of ` + dev + ` has size 16777216 bytes, want 20M (20971520 bytes): existing layout does not match: no changes made` + "\nhint: pass --wipe to replace it"
		if err == nil || err.Error() != want || !errors.Is(err, ErrMismatch) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		if after := run(t, "sgdisk", "-p", dev); after != before {
			t.Fatalf("partition table changed:\n%s\n%s", before, after)
		}
	})
}
