package hwconfig

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/nixeval"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/testenv"
)

func fixture(t *testing.T, name string) *Hardware {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// aarch64Nix is what fleet writes for the rig's aarch64 installer
// (testdata/aarch64-virt.txt: Script's output there, qemu's virt machine
// under UEFI with virtio disks and NIC, an NVMe drive and an SD card).
const aarch64Nix = `# The hardware configuration of nas, written by fleet install --generate-hardware-config
# nixos-generate-config from what the installer's /sys and /proc say (it had no
# nixos-generate-config of its own). Generate it again rather than edit it.
{ config, lib, pkgs, modulesPath, ... }:

{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  # The drivers of the machine's disk, network, SD and USB controllers, from the
  # device up to the bus: what the initrd needs to reach the root device.
  boot.initrd.availableKernelModules = [ "nvme" "sdhci_pci" "virtio_blk" "virtio_net" "virtio_pci" ];
  boot.initrd.kernelModules = [ ];
  boot.kernelModules = [ ];
  boot.extraModulePackages = [ ];

  networking.useDHCP = lib.mkDefault true;
  nixpkgs.hostPlatform = lib.mkDefault "aarch64-linux";
}
`

// TestNixAarch64Virt: the aarch64 rig's reading becomes the file above:
// the virtio, NVMe and SDHCI drivers the VM really has, the qemu guest
// profile, the platform, no microcode (ARM has none to load).
func TestNixAarch64Virt(t *testing.T) {
	h := fixture(t, "aarch64-virt.txt")
	if h.System != "aarch64-linux" || h.Virtualisation != "qemu" || h.CPUVendor != "" || h.KVM != "" || len(h.Tools) != 0 {
		t.Fatalf("read %+v", h)
	}
	if got := string(Nix(h, "nas")); got != aarch64Nix {
		t.Fatalf("got:\n%s\nwant:\n%s", got, aarch64Nix)
	}
}

// x86Output is Script's output on an x86_64 KVM host with an Intel CPU,
// a SATA disk on AHCI, an NVMe drive, a USB stick (the installer) and an
// Intel NIC.
const x86Output = `@@machine
x86_64
@@cpu
vendor_id	: GenuineIntel
vmx
@@virt
none
@@tools
@@dev
block nvme0n1 - nvme
block sda - sd_mod ahci
block sdb - sd_mod usb_storage
net enp3s0 - e1000e
pci 0000:00:14.0 0x0c0330 xhci_pci
pci 0000:00:17.0 0x010601 ahci
pci 0000:01:00.0 0x010802 nvme
usb 2-3:1.0 08 usb_storage
`

// TestNixX86Metal: bare metal gets the firmware scan's import, the
// Intel microcode and kvm-intel; the modules sorted, each once.
func TestNixX86Metal(t *testing.T) {
	h, err := Parse([]byte(x86Output))
	if err != nil {
		t.Fatal(err)
	}
	got := string(Nix(h, "router"))
	for _, want := range []string{
		`imports = [ (modulesPath + "/installer/scan/not-detected.nix") ];`,
		`boot.initrd.availableKernelModules = [ "ahci" "e1000e" "nvme" "sd_mod" "usb_storage" "xhci_pci" ];`,
		`boot.kernelModules = [ "kvm-intel" ];`,
		`nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";`,
		`hardware.cpu.intel.updateMicrocode = lib.mkDefault config.hardware.enableRedistributableFirmware;`,
	} {
		if !strings.Contains(got, "  "+want+"\n") {
			t.Errorf("lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "amd") {
		t.Errorf("AMD settings for an Intel CPU:\n%s", got)
	}
}

// TestNixParsesAndEvaluates: each generated file parses with fleet's
// evaluator and the real nix-instantiate, and evaluates (called as NixOS
// calls a module) to the modules and platform read from the machine.
func TestNixParsesAndEvaluates(t *testing.T) {
	testenv.Programs(t, "nix-instantiate")
	x86, _ := Parse([]byte(x86Output))
	for name, h := range map[string]*Hardware{"aarch64": fixture(t, "aarch64-virt.txt"), "x86": x86} {
		src := Nix(h, "nas")
		if _, err := nixeval.Parse(name+".nix", "/", string(src)); err != nil {
			t.Errorf("%s: nixeval: %v", name, err)
		}
		p := filepath.Join(t.TempDir(), "hardware-configuration.nix")
		os.WriteFile(p, src, 0o644)
		if out, err := exec.Command("nix-instantiate", "--parse", p).CombinedOutput(); err != nil {
			t.Errorf("%s: nix-instantiate --parse: %v\n%s", name, err, out)
		}
		out, err := exec.Command("nix-instantiate", "--eval", "--strict", "--json", "-E",
			`let m = import `+p+` { config.hardware.enableRedistributableFirmware = true; lib.mkDefault = v: v; pkgs = { }; modulesPath = "/m"; };
			 in { inherit (m.boot.initrd) availableKernelModules; platform = m.nixpkgs.hostPlatform; }`).Output()
		if err != nil {
			t.Fatalf("%s: nix-instantiate --eval: %v", name, err)
		}
		var got struct {
			AvailableKernelModules []string
			Platform               string
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.AvailableKernelModules, h.InitrdModules()) || got.Platform != h.System {
			t.Errorf("%s: nix evaluates to %+v, read %v %s", name, got, h.InitrdModules(), h.System)
		}
	}
}

// TestHostileOutput: what a machine prints is not trusted: module names
// that are not names, a vendor or virtualisation with quotes, a host
// name with a newline and ${...} never reach the Nix file, which parses.
func TestHostileOutput(t *testing.T) {
	out := "@@machine\naarch64\n@@cpu\nvendor_id : Evil\"; boot.x = 1; #\n@@virt\nqemu\"${x}\n@@tools\nrm -rf /\n@@dev\n" +
		"block vda - virtio_blk \"];system.activationScripts.x=\"pwn virtio_pci ${builtins.exec}\n"
	h, err := Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if h.CPUVendor != "" || h.Virtualisation != "" || len(h.Tools) != 0 {
		t.Fatalf("kept hostile values: %+v", h)
	}
	if !reflect.DeepEqual(h.InitrdModules(), []string{"virtio_blk", "virtio_pci"}) {
		t.Fatalf("modules %q", h.InitrdModules())
	}
	src := string(Nix(h, "nas\n  boot.evil = true; ${x}"))
	if _, err := nixeval.Parse("h.nix", "/", src); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, src)
	}
	if strings.Contains(src, "\n  boot.evil") || strings.Contains(src, "activationScripts") {
		t.Fatalf("hostile text in the file:\n%s", src)
	}
	if got := nixString("a\"b\\c${d}$e\n"); got != `"a\"b\\c\${d}$e\n"` {
		t.Fatalf("nixString: %s", got)
	}
	if _, err := Parse([]byte("@@machine\n")); err == nil {
		t.Fatal("parsed output without a device section")
	}
}

// TestFacterReport: the report is JSON with the fields nixpkgs'
// hardware.facter modules read.
func TestFacterReport(t *testing.T) {
	var r FacterReport
	if err := json.Unmarshal(Facter(fixture(t, "aarch64-virt.txt")), &r); err != nil {
		t.Fatal(err)
	}
	if r.System != "aarch64-linux" || r.Virtualisation != "qemu" || len(r.Hardware.CPU) != 1 || r.Generator == "" {
		t.Fatalf("report %+v", r)
	}
	mods := func(ds []FacterDevice) (all []string) {
		for _, d := range ds {
			all = append(all, d.DriverModules...)
		}
		return all
	}
	if got := mods(r.Hardware.Disk); !reflect.DeepEqual(got, []string{"sdhci_pci", "nvme", "virtio_blk", "virtio_pci", "virtio_blk", "virtio_pci", "virtio_blk", "virtio_pci", "virtio_blk", "virtio_pci", "virtio_blk", "virtio_pci"}) {
		t.Errorf("disks' driver_modules %q", got)
	}
	if got := mods(r.Hardware.NetworkController); !reflect.DeepEqual(got, []string{"virtio_net", "virtio_pci"}) {
		t.Errorf("network controllers' driver_modules %q", got)
	}
	x86, _ := Parse([]byte(x86Output))
	json.Unmarshal(Facter(x86), &r)
	if r.Hardware.CPU[0].VendorName != "GenuineIntel" || !reflect.DeepEqual(r.Hardware.CPU[0].Features, []string{"vmx"}) || len(r.Hardware.USBController) != 2 {
		t.Errorf("x86 report %+v", r.Hardware)
	}
}

// TestRootMissing: the root's drivers against the declared modules, in
// the kernel's spelling ('-' and '_' alike).
func TestRootMissing(t *testing.T) {
	r := ParseRoot([]string{"/dev/vda2", "vda", " virtio_blk virtio_pci"})
	if r.Source != "/dev/vda2" || !reflect.DeepEqual(r.Disks, []string{"vda"}) || !reflect.DeepEqual(r.Modules, []string{"virtio_blk", "virtio_pci"}) {
		t.Fatalf("%+v", r)
	}
	if m := r.Missing([]string{"virtio-pci", "ahci"}); !reflect.DeepEqual(m, []string{"virtio_blk"}) {
		t.Fatalf("missing %q", m)
	}
	if m := r.Missing([]string{"virtio_blk", "virtio-pci"}); len(m) != 0 {
		t.Fatalf("missing %q", m)
	}
	r = ParseRoot([]string{"/dev/md127", "vdb,vdc", " virtio_blk virtio_pci virtio_blk virtio_pci", "extra"})
	if !reflect.DeepEqual(r.Disks, []string{"vdb", "vdc"}) || !reflect.DeepEqual(r.Modules, []string{"virtio_blk", "virtio_pci"}) {
		t.Fatalf("%+v", r)
	}
}

// TestRootScriptHere runs RootScript on this machine: it names the device
// / is mounted from, as findmnt does, and disks that exist.
func TestRootScriptHere(t *testing.T) {
	testenv.Programs(t, "findmnt")
	out, err := exec.Command("sh", "-c", RootScript).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimRight(string(out), "\n"), "\t")
	if len(f) != 4 || f[0] != "R" {
		t.Fatalf("output %q", out)
	}
	src, _ := exec.Command("findmnt", "-n", "-o", "SOURCE", "/").Output()
	r := ParseRoot(f[1:])
	if want := strings.TrimSpace(string(src)); r.Source != want && f[1] != want {
		t.Errorf("root %q, findmnt says %q", f[1], want)
	}
	for _, d := range r.Disks {
		if _, err := os.Stat("/sys/class/block/" + d); err != nil {
			t.Errorf("disk %s: %v", d, err)
		}
	}
	t.Logf("root %s on %v driven by %v", r.Source, r.Disks, r.Modules)
}

// TestGenerate runs Gather and Generate on this machine (remote.Local):
// with a nixos-generate-config on the PATH, its output is the file, run
// as nixos-anywhere runs it; without it, fleet's; with one that prints
// something that is not Nix, an error that says who wrote it.
func TestGenerate(t *testing.T) {
	ctx := context.Background()
	bin := t.TempDir()
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	r := &remote.Local{}
	c, err := Generate(ctx, r, BackendGenerateConfig, "nas")
	if err != nil {
		t.Fatal(err)
	}
	if c.Tool || !strings.HasPrefix(string(c.Content), "# The hardware configuration of nas, written by fleet") {
		t.Fatalf("without the tool: tool %v\n%s", c.Tool, c.Content)
	}
	args := filepath.Join(bin, "args")
	tool := "#!/bin/sh\necho \"$@\" > " + args + "\nprintf '{ config, ... }: { boot.initrd.availableKernelModules = [ \"ahci\" ]; }\\n'\n"
	os.WriteFile(filepath.Join(bin, "nixos-generate-config"), []byte(tool), 0o755)
	if c, err = Generate(ctx, r, BackendGenerateConfig, "nas"); err != nil {
		t.Fatal(err)
	}
	if a, _ := os.ReadFile(args); !c.Tool || string(c.Content) != "{ config, ... }: { boot.initrd.availableKernelModules = [ \"ahci\" ]; }\n" || string(a) != "--show-hardware-config --no-filesystems\n" {
		t.Fatalf("with the tool: tool %v args %q\n%s", c.Tool, a, c.Content)
	}
	os.WriteFile(filepath.Join(bin, "nixos-generate-config"), []byte("#!/bin/sh\necho 'perl: error'\n"), 0o755)
	if _, err := Generate(ctx, r, BackendGenerateConfig, "nas"); err == nil || !strings.HasPrefix(err.Error(), "the installer's nixos-generate-config wrote a file that is not valid Nix: ") {
		t.Fatalf("a tool printing garbage: %v", err)
	}
	if c, err = Generate(ctx, r, BackendFacter, "nas"); err != nil || c.Tool || !json.Valid(c.Content) {
		t.Fatalf("facter without the tool: %v %v", err, c)
	}
	if _, err := Generate(ctx, r, "hwinfo", "nas"); err == nil || err.Error() != `unknown hardware configuration backend "hwinfo": want nixos-generate-config or nixos-facter` {
		t.Fatalf("unknown backend: %v", err)
	}
}

// TestScriptHere runs Script on this machine (real /sys and /proc) and
// parses it: the system is uname's, every block device it names exists
// with the modules its driver chain really has loaded, and the file
// rendered from it parses.
func TestScriptHere(t *testing.T) {
	out, err := exec.Command("sh", "-c", Script()).Output()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m, _ := exec.Command("uname", "-m").Output()
	if want := facts.NixSystem(strings.TrimSpace(string(m))); h.System != want {
		t.Errorf("system %q, want %q", h.System, want)
	}
	loaded, _ := os.ReadFile("/proc/modules")
	for _, d := range h.Devices {
		if d.Kind == "block" {
			if _, err := os.Stat("/sys/class/block/" + d.Name); err != nil {
				t.Errorf("block device %s: %v", d.Name, err)
			}
		}
		for _, mod := range d.Modules {
			if !strings.Contains(string(loaded), "\n"+Canonical(mod)+" ") && !strings.HasPrefix(string(loaded), Canonical(mod)+" ") {
				t.Errorf("%s %s: module %s is not loaded here", d.Kind, d.Name, mod)
			}
		}
	}
	if _, err := nixeval.Parse("here.nix", "/", string(Nix(h, "here"))); err != nil {
		t.Fatalf("the file for this machine does not parse: %v", err)
	}
	t.Logf("%s, %s, initrd %v", h.System, h.Virtualisation, h.InitrdModules())
}
