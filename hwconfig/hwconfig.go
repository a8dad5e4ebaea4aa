// Package hwconfig writes a machine's hardware configuration, as
// nixos-anywhere's --generate-hardware-config does: the file a NixOS
// host imports so that its initrd can reach the root device (the disk
// and network controllers' kernel modules), with its CPU's microcode and
// its platform.
//
// [Generate] runs the installer's own tool when it has one
// (`nixos-generate-config --show-hardware-config --no-filesystems` for
// [BackendGenerateConfig], `nixos-facter` for [BackendFacter]: what
// nixos-anywhere runs). Without it, fleet writes the file from what
// [Gather] reads of the machine in one command (/sys and /proc only): the
// kernel modules that drive its block devices, NICs, SD hosts and
// storage and USB controllers (the driver of each device from it up to
// the bus, as the kernel bound them), the CPU's vendor and virtualisation
// extensions, whether it is a virtual machine, and its Nix system.
// [Nix] renders that as nixos-generate-config's file (without
// filesystems: disko declares them); [Facter] as a minimal nixos-facter
// report holding the fields nixpkgs' hardware.facter modules read.
//
// [RootDrivers] is the other half, for the first boot: the modules that
// drive the device the running system's root is on, which the host's
// initrd must have declared (see provision's verify).
package hwconfig

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/remote"
)

// The backends, in nixos-anywhere's spelling.
const (
	BackendGenerateConfig = "nixos-generate-config" // a hardware-configuration.nix
	BackendFacter         = "nixos-facter"          // a facter.json report
)

// Backends are the known backends.
var Backends = []string{BackendGenerateConfig, BackendFacter}

// Hardware is what fleet reads of a machine for its hardware
// configuration.
type Hardware struct {
	System string // Nix system double: aarch64-linux
	// CPUVendor is /proc/cpuinfo's vendor_id (GenuineIntel,
	// AuthenticAMD); "" on ARM, which has no microcode to load.
	CPUVendor string
	// KVM is the kernel module for the CPU's virtualisation extensions
	// (kvm-intel for vmx, kvm-amd for svm), "" without them.
	KVM string
	// Virtualisation is systemd-detect-virt's answer (qemu, kvm, oracle,
	// microsoft, none...), or what DMI and the device tree say without it.
	Virtualisation string
	// Devices are the devices whose drivers the initrd may need, each
	// with the modules of its driver chain.
	Devices []Device
	// Tools are the generators the machine has on its PATH.
	Tools []string
}

// Device is one device and the kernel modules that drive it: its own
// driver's and those of every device above it up to the bus (a virtio
// disk: virtio_blk, then virtio_pci), as modules (built-in drivers have
// none).
type Device struct {
	Kind    string   // block, net, mmc_host, pci (a storage or USB controller), usb (mass storage, keyboard)
	Name    string   // vda, eth0, mmc0, 0000:00:1d.0, 1-1:1.0
	Class   string   // the PCI or USB interface class, for pci and usb
	Modules []string // from the device up
}

// chainFunc prints the modules of the drivers from the device at sysfs
// path $1 up to /sys/devices, each after a space.
const chainFunc = `chain() {
  d=$(readlink -f "$1" 2>/dev/null) || return 0
  while [ "${d#/sys/devices/}" != "$d" ]; do
    if [ -e "$d/driver/module" ]; then m=$(readlink -f "$d/driver/module"); printf ' %s' "${m##*/}"; fi
    d=${d%/*}
  done
}
`

// script prints sections [parse] reads: only sh, /proc and /sys.
const script = chainFunc + `echo @@machine; uname -m
echo @@cpu; grep -m1 '^vendor_id' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'vmx|svm' | head -n1
echo @@virt
v=
if command -v systemd-detect-virt >/dev/null 2>&1; then v=$(systemd-detect-virt 2>/dev/null); fi
if [ -z "$v" ]; then
  case "$(cat /sys/class/dmi/id/sys_vendor /sys/class/dmi/id/product_name 2>/dev/null | tr '\n' ' ')" in
  *QEMU*) v=qemu ;; *innotek*|*VirtualBox*) v=oracle ;; *Microsoft*Virtual*) v=microsoft ;; *VMware*) v=vmware ;;
  esac
fi
if [ -z "$v" ] && tr -d '\000' </proc/device-tree/compatible 2>/dev/null | grep -q 'linux,dummy-virt'; then v=qemu; fi
echo "${v:-none}"
echo @@tools; for c in nixos-generate-config nixos-facter; do command -v "$c" >/dev/null 2>&1 && echo "$c"; done
echo @@dev
for d in /sys/class/block/*; do
  [ -e "$d/device" ] && [ ! -e "$d/partition" ] || continue
  printf 'block %s -' "${d##*/}"; chain "$d/device"; echo
done
for d in /sys/class/net/*; do
  [ -e "$d/device" ] || continue
  printf 'net %s -' "${d##*/}"; chain "$d/device"; echo
done
for d in /sys/class/mmc_host/*; do
  [ -e "$d/device" ] || continue
  printf 'mmc_host %s -' "${d##*/}"; chain "$d/device"; echo
done
for d in /sys/bus/pci/devices/*; do
  [ -e "$d/class" ] || continue
  c=$(cat "$d/class")
  case $c in 0x01*|0x0c00*|0x0c03*) printf 'pci %s %s' "${d##*/}" "$c"; chain "$d"; echo ;; esac
done
for d in /sys/bus/usb/devices/*; do
  [ -e "$d/bInterfaceClass" ] || continue
  c=$(cat "$d/bInterfaceClass"); p=$(cat "$d/bInterfaceProtocol" 2>/dev/null)
  case $c/$p in 08/*|03/01) printf 'usb %s %s' "${d##*/}" "$c"; chain "$d"; echo ;; esac
done
`

// Script is the script [Gather] runs (with sh -c); [Parse] reads its
// output.
func Script() string { return script }

// Gather reads the machine r runs on, in one command.
func Gather(ctx context.Context, r remote.Runner) (*Hardware, error) {
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script}, Label: "read the hardware (/sys, /proc)"})
	if err != nil {
		return nil, fmt.Errorf("read the hardware: %w", err)
	}
	return Parse(res.Stdout)
}

// moduleName is what a kernel module's name may be; anything else from
// the machine is dropped, never written into a Nix file.
var moduleName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// word is what other values from the machine may be.
var word = regexp.MustCompile(`^[A-Za-z0-9_.:,+-]{1,64}$`)

// Parse reads the output of [Script].
func Parse(out []byte) (*Hardware, error) {
	h := &Hardware{}
	sec := ""
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if s, ok := strings.CutPrefix(line, "@@"); ok {
			sec, seen[s] = s, true
			continue
		}
		if line == "" {
			continue
		}
		switch sec {
		case "machine":
			h.System = facts.NixSystem(clean(line))
		case "cpu":
			if v, ok := strings.CutPrefix(line, "vendor_id"); ok {
				h.CPUVendor = clean(strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(v), ":")))
			} else if line == "vmx" {
				h.KVM = "kvm-intel"
			} else if line == "svm" {
				h.KVM = "kvm-amd"
			}
		case "virt":
			h.Virtualisation = clean(line)
		case "tools":
			if slices.Contains(Backends, line) {
				h.Tools = append(h.Tools, line)
			}
		case "dev":
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			d := Device{Kind: f[0], Name: clean(f[1])}
			if f[2] != "-" {
				d.Class = clean(f[2])
			}
			for _, m := range f[3:] {
				if moduleName.MatchString(m) {
					d.Modules = append(d.Modules, m)
				}
			}
			if d.Name != "" {
				h.Devices = append(h.Devices, d)
			}
		}
	}
	if !seen["dev"] || h.System == "" {
		return nil, fmt.Errorf("read the hardware: unexpected output (no machine or device section)")
	}
	return h, nil
}

// clean keeps a value from the machine only when it is a plain word.
func clean(s string) string {
	if word.MatchString(s) {
		return s
	}
	return ""
}

// InitrdModules are the modules the initrd should have available: those
// of every device's driver chain, sorted, each once (the underscore form
// the kernel reports them in).
func (h *Hardware) InitrdModules() []string {
	var mods []string
	for _, d := range h.Devices {
		for _, m := range d.Modules {
			m = Canonical(m)
			if !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
	}
	slices.Sort(mods)
	return mods
}

// Canonical is a module name as the kernel compares them: '-' and '_'
// are the same.
func Canonical(module string) string { return strings.ReplaceAll(module, "-", "_") }

// Microcode is the NixOS option that loads the CPU's microcode updates
// (hardware.cpu.intel or .amd), "" for other CPUs.
func (h *Hardware) Microcode() string {
	switch h.CPUVendor {
	case "GenuineIntel":
		return "hardware.cpu.intel.updateMicrocode"
	case "AuthenticAMD":
		return "hardware.cpu.amd.updateMicrocode"
	}
	return ""
}

// Has reports whether the machine has the generator tool on its PATH.
func (h *Hardware) Has(tool string) bool { return slices.Contains(h.Tools, tool) }
