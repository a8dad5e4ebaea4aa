package facts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/fleetnix/fleet/remote"
)

func TestParseInstaller(t *testing.T) {
	out, err := os.ReadFile("testdata/installer.txt")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if f.OSID != "nixos" || f.OSVersion != "25.05" || !f.NixOS || !f.Installer || !f.HasNix || !f.HasNixOSInst {
		t.Fatalf("os facts: %+v", f)
	}
	if f.System != "aarch64-linux" || f.Kernel != "6.12.30" || f.MemoryBytes != 4030464*1024 {
		t.Fatalf("system %q kernel %q mem %d", f.System, f.Kernel, f.MemoryBytes)
	}
	var names []string
	for _, d := range f.Disks {
		names = append(names, d.Name)
	}
	if !reflect.DeepEqual(names, []string{"loop0", "md127", "nvme0n1", "sda", "sdb"}) {
		t.Fatalf("disks %v (sr0 and ram0 must be left out)", names)
	}
	want := map[string][]string{
		"loop0":   {"mounted at /nix/.ro-store"},
		"nvme0n1": {"/dev/nvme0n1p3 mounted at /mnt/my data"},
		"sda":     {"/dev/sda1 held by md127", "swap on /dev/sda2"},
		"sdb":     {},
		"md127":   {},
	}
	for _, d := range f.Disks {
		if !reflect.DeepEqual(d.InUse, want[d.Name]) {
			t.Errorf("%s in use: %q, want %q", d.Name, d.InUse, want[d.Name])
		}
		if d.Root != (d.Name == "loop0") {
			t.Errorf("%s root = %v (the live media behind the overlay root is loop0)", d.Name, d.Root)
		}
	}
	sda, ok := f.Disk("/dev/disk/by-id/ata-WDC_WD40_X1")
	if !ok || sda.Name != "sda" || sda.SizeBytes != 7814037168*512 || !sda.Rotational || sda.Model != "WDC WD40EFRX" {
		t.Fatalf("sda: %+v", sda)
	}
	if len(sda.Partitions) != 2 || sda.Partitions[0].Number != 1 || !sda.Partitions[1].Swap || sda.Partitions[0].Holders[0] != "md127" {
		t.Fatalf("sda partitions: %+v", sda.Partitions)
	}
	if nv, _ := f.Disk("nvme0n1"); nv.Free() || nv.Partitions[1].Mounts[0] != "/mnt/my data" {
		t.Fatalf("nvme: %+v", nv)
	}
}

func TestParseGarbage(t *testing.T) {
	_, err := Parse([]byte("sh: 1: syntax error\n"))
	if err == nil || err.Error() != "gather facts: unexpected output (no block device section)" {
		t.Fatalf("got %v", err)
	}
}

// TestGatherLoopDevice attaches a real loop device with a partition table,
// mounts a partition, and checks that the disk is reported in use.
func TestGatherLoopDevice(t *testing.T) {
	testenv.Root(t, "loop devices (CI runs as root)")
	img := filepath.Join(t.TempDir(), "disk.img")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("truncate", "-s", "64M", img)
	run("sgdisk", "--new=1:0:+16M", "--new=2:0:0", img)
	loop := run("losetup", "-fP", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	// This kernel's loop partition scan does not always create the
	// partition devices; partx adds them (as a udev-less installer must).
	if _, err := os.Stat(loop + "p2"); err != nil {
		run("partx", "-a", loop)
	}
	run("mkfs.ext4", "-q", loop+"p2")
	mnt := t.TempDir()
	run("mount", loop+"p2", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	f, err := Gather(context.Background(), &remote.Local{})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := f.Disk(loop)
	if !ok {
		t.Fatalf("%s not reported: %+v", loop, f.Disks)
	}
	if d.SizeBytes != 64<<20 || len(d.Partitions) != 2 || d.Partitions[0].SizeBytes != 16<<20 {
		t.Fatalf("geometry: %+v", d)
	}
	if want := []string{loop + "p2 mounted at " + mnt}; !reflect.DeepEqual(d.InUse, want) {
		t.Fatalf("in use %q, want %q", d.InUse, want)
	}
	if d.Root {
		t.Fatal("a loop disk marked as root")
	}
	root := false
	for _, d := range f.Disks {
		root = root || d.Root
	}
	if !root {
		t.Fatal("no disk holds the running root")
	}
}

// FuzzParse: output from a machine fleet does not trust yet must never
// crash the parser.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/installer.txt"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("@@block\nB\tsda\t8:0\t100\t1\tsda\t1\t0\t0\t0\tsda,\tsda,\t\n@@mountinfo\n1 1 8:0 / / rw - ext4 /dev/sda rw,lowerdir=/\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fx, err := Parse(b)
		if err != nil {
			return
		}
		for _, d := range fx.Disks {
			if d.Path != "/dev/"+d.Name || d.InUse == nil || d.Partitions == nil {
				t.Fatalf("disk %+v", d)
			}
		}
	})
}
