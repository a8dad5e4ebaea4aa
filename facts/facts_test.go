package facts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
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
	for _, fx := range []string{"installer.txt", "arm-sd.txt", "kexec.txt", "installed.txt"} {
		if b, err := os.ReadFile(filepath.Join("testdata", fx)); err == nil {
			f.Add(b)
		}
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

func parseFixture(t *testing.T, name string) *Facts {
	t.Helper()
	out, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestParseARMBoard: an ARM NAS board booted from an SD card: the model
// from the device tree, eMMC, SD and NVMe disks with their p-separated
// partitions, and neither the eMMC's boot and RPMB areas, the SPI flash
// nor the NVMe multipath path device as disks. No UEFI.
func TestParseARMBoard(t *testing.T) {
	f := parseFixture(t, "arm-sd.txt")
	if f.Model != "Radxa ROCK 5B" || f.UEFI || f.System != "aarch64-linux" || f.RootFS != "ext4" {
		t.Fatalf("model %q uefi %v system %q root %q", f.Model, f.UEFI, f.System, f.RootFS)
	}
	if !f.Installer || f.InstallerReason != "VARIANT_ID=installer in /etc/os-release" {
		t.Fatalf("installer %v: %q", f.Installer, f.InstallerReason)
	}
	var names []string
	for _, d := range f.Disks {
		names = append(names, d.Name)
	}
	if !reflect.DeepEqual(names, []string{"mmcblk0", "mmcblk1", "nvme0n1"}) {
		t.Fatalf("disks %v", names)
	}
	sd, _ := f.Disk("/dev/mmcblk1")
	if !sd.Root || len(sd.Partitions) != 2 || sd.Partitions[1].Path != "/dev/mmcblk1p2" || sd.Partitions[1].Number != 2 {
		t.Fatalf("sd card: %+v", sd)
	}
	if want := []string{"/dev/mmcblk1p1 mounted at /boot/firmware", "/dev/mmcblk1p2 mounted at /"}; !reflect.DeepEqual(sd.InUse, want) {
		t.Fatalf("sd card in use %q, want %q", sd.InUse, want)
	}
	nv, _ := f.Disk("/dev/disk/by-id/nvme-WD_Red_SN700_1TB_2231")
	if nv.Name != "nvme0n1" || !nv.Free() || nv.Root || nv.Model != "WD Red SN700 1000GB" || nv.SizeBytes != 1953525168*512 {
		t.Fatalf("nvme: %+v", nv)
	}
	if len(nv.Partitions) != 2 || nv.Partitions[0].Path != "/dev/nvme0n1p1" || nv.Partitions[1].Path != "/dev/nvme0n1p2" {
		t.Fatalf("nvme partitions: %+v", nv.Partitions)
	}
	if emmc, _ := f.Disk("mmcblk0"); !emmc.Free() || len(emmc.Partitions) != 0 || emmc.SizeBytes != 61071360*512 {
		t.Fatalf("emmc: %+v", emmc)
	}
}

// TestParseModel: the device tree's model first, then DMI's product
// name (an ARM machine booted through UEFI with ACPI has no device tree
// in /sys, as qemu's virt machine under AAVMF, which TestInstallAarch64OnRig
// gathers), then the device tree's first compatible string (qemu's virt
// machine booted without firmware: a device tree with no model).
func TestParseModel(t *testing.T) {
	for _, c := range []struct{ lines, want string }{
		{"dt Raspberry Pi 4 Model B Rev 1.4\ndtc raspberrypi,4-model-b\n", "Raspberry Pi 4 Model B Rev 1.4"},
		{"dmi QEMU Virtual Machine\n", "QEMU Virtual Machine"},
		{"dtc linux,dummy-virt\n", "linux,dummy-virt"},
		{"dtc linux,dummy-virt\ndmi QEMU Virtual Machine\n", "QEMU Virtual Machine"},
		{"", ""},
	} {
		f, err := Parse([]byte("@@machine\naarch64\n@@model\n" + c.lines + "@@block\n"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Model != c.want {
			t.Errorf("%q: model %q, want %q", c.lines, f.Model, c.want)
		}
	}
}

// TestParseInstallerByLiveRoot: a NixOS image without VARIANT_ID=installer
// whose / is tmpfs (as a kexec image's is) is an installer, and says why.
func TestParseInstallerByLiveRoot(t *testing.T) {
	f := parseFixture(t, "kexec.txt")
	if !f.Installer || f.InstallerReason != "/ is tmpfs, a live root (no VARIANT_ID=installer in /etc/os-release)" {
		t.Fatalf("installer %v: %q", f.Installer, f.InstallerReason)
	}
	if f.Model != "Standard PC (Q35 + ICH9, 2009)" || !f.UEFI || f.RootFS != "tmpfs" {
		t.Fatalf("model %q uefi %v root %q", f.Model, f.UEFI, f.RootFS)
	}
	for _, d := range f.Disks {
		if d.Root || !d.Free() {
			t.Fatalf("%s: root %v in use %q", d.Name, d.Root, d.InUse)
		}
	}
}

// TestParseInstalledNixOSRefused: an installed NixOS is no installer, and
// the reason names both checks that failed.
func TestParseInstalledNixOSRefused(t *testing.T) {
	f := parseFixture(t, "installed.txt")
	want := "its /etc/os-release has no VARIANT_ID=installer, and / is ext4 on /dev/sda2, not a live root (overlay or tmpfs)"
	if f.Installer || f.InstallerReason != want {
		t.Fatalf("installer %v: %q\nwant %q", f.Installer, f.InstallerReason, want)
	}
	f2, err := Parse([]byte(strings.Replace(mustRead(t, "testdata/installed.txt"), "@@kernel", "VARIANT_ID=server\n@@kernel", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "its /etc/os-release has VARIANT_ID=server, not installer, and / is ext4 on /dev/sda2, not a live root (overlay or tmpfs)"; f2.Installer || f2.InstallerReason != want {
		t.Fatalf("installer %v: %q", f2.Installer, f2.InstallerReason)
	}
}

// TestParseEscapesHostileFields: what a machine reports cannot drive the
// terminal fleet prints it on.
func TestParseEscapesHostileFields(t *testing.T) {
	out := strings.NewReplacer(
		"PRETTY_NAME=\"NixOS 25.05 (Warbler)\"", "PRETTY_NAME=\"\x1b[2J\x1b]0;pwned\x07NixOS\"",
		"dt Radxa ROCK 5B", "dt Radxa\x1b[32m ok",
		"/boot/firmware", "/boot/\x1b[31mfw",
		"WD Red SN700 1000GB", "WD\u009b1m Red",
	).Replace(mustRead(t, "testdata/arm-sd.txt"))
	f, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(f)
	if strings.ContainsAny(string(b), "\x1b\x07\u009b") || strings.Contains(string(b), `\u001b`) {
		t.Fatalf("raw control characters in the facts: %s", b)
	}
	sd, _ := f.Disk("mmcblk1")
	nv, _ := f.Disk("nvme0n1")
	if f.OSName != `\x1b[2J\x1b]0;pwned\x07NixOS` || f.Model != `Radxa\x1b[32m ok` || sd.InUse[0] != `/dev/mmcblk1p1 mounted at /boot/\x1b[31mfw` || nv.Model != `WD\u009b1m Red` {
		t.Fatalf("os %q model %q in use %q disk model %q", f.OSName, f.Model, sd.InUse, nv.Model)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGatherThisMachine checks what Gather reports about this machine
// against the machine itself: the model DMI gives (or none), UEFI or not,
// the root filesystem findmnt sees, and the installer check's reason for
// a system that is not NixOS.
func TestGatherThisMachine(t *testing.T) {
	testenv.Programs(t, "findmnt")
	f, err := Gather(context.Background(), &remote.Local{})
	if err != nil {
		t.Fatal(err)
	}
	model := ""
	if b, err := os.ReadFile("/sys/firmware/devicetree/base/model"); err == nil {
		model = strings.TrimRight(string(b), "\x00\n")
	} else if b, err := os.ReadFile("/sys/class/dmi/id/product_name"); err == nil {
		model = strings.TrimSpace(string(b))
	}
	_, efiErr := os.Stat("/sys/firmware/efi")
	out, err := exec.Command("findmnt", "-n", "-o", "FSTYPE", "/").Output()
	if err != nil {
		t.Fatal(err)
	}
	if f.Model != model || f.UEFI != (efiErr == nil) || f.RootFS != strings.TrimSpace(string(out)) {
		t.Fatalf("model %q uefi %v root %q; the machine says model %q, efi %v, root %q", f.Model, f.UEFI, f.RootFS, model, efiErr == nil, out)
	}
	if _, err := os.Stat("/etc/NIXOS"); err != nil {
		if want := "it runs " + f.OSName + ", not NixOS (no /etc/NIXOS)"; f.Installer || f.InstallerReason != want {
			t.Fatalf("installer %v: %q, want %q", f.Installer, f.InstallerReason, want)
		}
	}
}

// TestMissingPrograms asks a real shell, locally and over SSH, which
// programs it lacks: builtins are not programs, busybox-style applets on
// PATH are.
func TestMissingPrograms(t *testing.T) {
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "fleet-applet"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "fleet-not-exec"), []byte("#!/bin/sh\n"), 0o644)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	ctx := context.Background()
	missing, err := MissingPrograms(ctx, &remote.Local{}, []string{"sh", "fleet-no-such-tool", "cd", "fleet-applet", "fleet-not-exec", "git"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fleet-no-such-tool", "cd", "fleet-not-exec"}; !reflect.DeepEqual(missing, want) {
		t.Fatalf("missing %q, want %q", missing, want)
	}
	if m, err := MissingPrograms(ctx, &remote.Local{}, []string{"sh"}); err != nil || m != nil {
		t.Fatalf("all there: %q %v", m, err)
	}
	for _, bad := range []string{"-rf", "/bin/sh", "a b", "$(id)", ""} {
		if _, err := MissingPrograms(ctx, &remote.Local{}, []string{"sh", bad}); err == nil || err.Error() != fmt.Sprintf("check programs: %q is not a program name", bad) {
			t.Errorf("%q: got %v", bad, err)
		}
	}

	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c, err := remote.Dial(ctx, remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	missing, err = MissingPrograms(ctx, c, []string{"sgdisk", "fleet-no-such-tool", "mkfs.ext4"})
	if err != nil || !reflect.DeepEqual(missing, []string{"fleet-no-such-tool"}) {
		t.Fatalf("over SSH: missing %q, %v", missing, err)
	}
	if c.Sessions() != 1 {
		t.Fatalf("%d sessions, want one round trip", c.Sessions())
	}
}
