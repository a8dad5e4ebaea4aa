package hwconfig

import (
	"encoding/json"
	"slices"
)

// FacterReport is the subset of nixos-facter's report (facter.json) that
// nixpkgs' hardware.facter modules read for the boot: the system
// (system.nix: nixpkgs.hostPlatform), the virtualisation (virtualisation.nix:
// the qemu guest's virtio modules), the CPUs' vendor and features
// (cpu.nix, the microcode; kvm-intel/kvm-amd from vmx/svm) and the
// driver_modules of the disks, storage, firewire and USB controllers
// (disk.nix: boot.initrd.availableKernelModules) and of the network
// controllers. Fleet writes it when the installer has no nixos-facter;
// Generator says so.
type FacterReport struct {
	Version        int            `json:"version"`
	System         string         `json:"system"`
	Virtualisation string         `json:"virtualisation"`
	Hardware       FacterHardware `json:"hardware"`
	Generator      string         `json:"fleet_generator"`
}

// FacterHardware is the report's hardware section.
type FacterHardware struct {
	CPU               []FacterCPU    `json:"cpu"`
	Disk              []FacterDevice `json:"disk,omitempty"`
	StorageController []FacterDevice `json:"storage_controller,omitempty"`
	NetworkController []FacterDevice `json:"network_controller,omitempty"`
	USBController     []FacterDevice `json:"usb_controller,omitempty"`
}

// FacterCPU is one CPU entry.
type FacterCPU struct {
	VendorName string   `json:"vendor_name"`
	Features   []string `json:"features"`
}

// FacterDevice is one device entry: its kernel modules.
type FacterDevice struct {
	SysfsID       string   `json:"sysfs_id"`
	DriverModules []string `json:"driver_modules"`
}

// facterVersion is the report format version nixos-facter's
// documentation shows.
const facterVersion = 2

// Facter renders h as a minimal nixos-facter report (see [FacterReport]).
func Facter(h *Hardware) []byte {
	r := FacterReport{Version: facterVersion, System: h.System, Virtualisation: h.Virtualisation,
		Generator: "fleet, from the installer's /sys and /proc (it had no nixos-facter)"}
	cpu := FacterCPU{VendorName: h.CPUVendor, Features: []string{}}
	switch h.KVM {
	case "kvm-intel":
		cpu.Features = append(cpu.Features, "vmx")
	case "kvm-amd":
		cpu.Features = append(cpu.Features, "svm")
	}
	r.Hardware.CPU = []FacterCPU{cpu}
	for _, d := range h.Devices {
		mods := make([]string, 0, len(d.Modules))
		for _, m := range d.Modules {
			if m = Canonical(m); !slices.Contains(mods, m) {
				mods = append(mods, m)
			}
		}
		e := FacterDevice{SysfsID: d.Name, DriverModules: mods}
		switch {
		case d.Kind == "block":
			r.Hardware.Disk = append(r.Hardware.Disk, e)
		case d.Kind == "net":
			r.Hardware.NetworkController = append(r.Hardware.NetworkController, e)
		case d.Kind == "pci" && len(d.Class) >= 6 && d.Class[:6] == "0x0c03", d.Kind == "usb":
			r.Hardware.USBController = append(r.Hardware.USBController, e)
		default: // mmc hosts, storage and firewire controllers
			r.Hardware.StorageController = append(r.Hardware.StorageController, e)
		}
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}
