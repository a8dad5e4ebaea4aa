package installers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"
)

// piImage makes a 1 GiB disk image laid out with sfdisk's script (and,
// when fs, FAT32 and ext4 made in its two partitions as pi's layout
// formats them).
func piImage(t *testing.T, script string, fs bool) string {
	t.Helper()
	testenv.Programs(t, "sfdisk", "mkfs.vfat", "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v: %s", name, args, err, out)
		}
	}
	run(script, "sfdisk", "-q", img)
	if fs {
		run("", "mkfs.vfat", "-F", "32", "-n", "FIRMWARE", "--offset=16384", img, "262144")
		run("", "mkfs.ext4", "-q", "-F", "-L", "nixos", "-E", "offset="+strconv.Itoa(264<<20), img, strconv.Itoa((1<<30-264<<20)>>10)+"k")
	}
	return img
}

// TestPiDisk: the check of pi's disk passes on an image laid out as
// hosts/pi.nix says (sfdisk and mkfs on a file, no VM), and names what
// differs on images that are not: the boot flag on the root instead, a
// FAT16 firmware partition of type 0x0b, and a GPT.
func TestPiDisk(t *testing.T) {
	ctx := context.Background()
	const pi = "label: dos\nstart=16384, size=524288, type=c, bootable\nstart=540672, type=83\n"
	if p, err := piDisk(ctx, piImage(t, pi, true)); err != nil || len(p) > 0 {
		t.Fatalf("pi's own layout: %v %q", err, p)
	}
	for _, c := range []struct {
		what, script string
		fs           bool
		want         string
	}{
		{"the root bootable, not the firmware", "label: dos\nstart=16384, size=524288, type=c\nstart=540672, type=83, bootable\n", false,
			"MBR entry 1 is {Status:0 Type:12 Start:16384 Size:524288}, want {Status:128 Type:12 Start:16384 Size:524288}"},
		{"a FAT partition of type 0x0b", "label: dos\nstart=16384, size=524288, type=b, bootable\nstart=540672, type=83\n", false,
			"MBR entry 1 is {Status:128 Type:11 Start:16384 Size:524288}, want {Status:128 Type:12 Start:16384 Size:524288}"},
		{"a gpt", "label: gpt\nstart=16384, size=524288, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=540672\n", false,
			"sector 1 holds a GPT header: the layout's table is msdos"},
		{"no filesystems", pi, false, `partition 1 holds no FAT32 labelled FIRMWARE (label "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", type "\x00\x00\x00\x00\x00\x00\x00\x00")`},
	} {
		p, err := piDisk(ctx, piImage(t, c.script, c.fs))
		if err != nil || !slices.Contains(p, c.want) {
			t.Errorf("%s: want the problem\n%s\ngot %v %q", c.what, c.want, err, p)
		}
	}
}
