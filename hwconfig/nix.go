package hwconfig

import (
	"fmt"
	"strings"
)

// Nix renders h as the hardware-configuration.nix that
// `nixos-generate-config --show-hardware-config --no-filesystems` writes
// (no fileSystems or swapDevices: the host's disko layout declares
// them), from fleet's reading of the machine. host names the host in the
// header comment.
func Nix(h *Hardware, host string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# The hardware configuration of %s, written by fleet install --generate-hardware-config\n", nixComment(host))
	b.WriteString("# nixos-generate-config from what the installer's /sys and /proc say (it had no\n")
	b.WriteString("# nixos-generate-config of its own). Generate it again rather than edit it.\n")
	b.WriteString("{ config, lib, pkgs, modulesPath, ... }:\n\n{\n")
	var imports []string
	switch h.Virtualisation {
	case "qemu", "kvm", "bochs":
		imports = append(imports, `(modulesPath + "/profiles/qemu-guest.nix")`)
	case "none", "":
		imports = append(imports, `(modulesPath + "/installer/scan/not-detected.nix")`)
	}
	fmt.Fprintf(&b, "  imports = [ %s];\n\n", join(imports))
	b.WriteString("  # The drivers of the machine's disk, network, SD and USB controllers, from the\n")
	b.WriteString("  # device up to the bus: what the initrd needs to reach the root device.\n")
	fmt.Fprintf(&b, "  boot.initrd.availableKernelModules = [ %s];\n", join(quoted(h.InitrdModules())))
	b.WriteString("  boot.initrd.kernelModules = [ ];\n")
	var kvm []string
	if h.KVM != "" {
		kvm = []string{h.KVM}
	}
	fmt.Fprintf(&b, "  boot.kernelModules = [ %s];\n", join(quoted(kvm)))
	b.WriteString("  boot.extraModulePackages = [ ];\n\n")
	b.WriteString("  networking.useDHCP = lib.mkDefault true;\n")
	switch h.Virtualisation {
	case "oracle":
		b.WriteString("  virtualisation.virtualbox.guest.enable = true;\n")
	case "microsoft":
		b.WriteString("  virtualisation.hypervGuest.enable = true;\n")
	}
	fmt.Fprintf(&b, "  nixpkgs.hostPlatform = lib.mkDefault %s;\n", nixString(h.System))
	if m := h.Microcode(); m != "" {
		fmt.Fprintf(&b, "  %s = lib.mkDefault config.hardware.enableRedistributableFirmware;\n", m)
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// join lays out list items for "[ %s]": each followed by a space.
func join(items []string) string {
	var b strings.Builder
	for _, s := range items {
		b.WriteString(s + " ")
	}
	return b.String()
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = nixString(s)
	}
	return out
}

// nixString is s as a Nix string literal: backslash, quote, "${" and
// the line breaks escaped, other control characters dropped.
func nixString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '\\' || r == '"':
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '$' && strings.HasPrefix(s[i:], "${"):
			b.WriteString(`\$`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// nixComment keeps a comment on its line.
func nixComment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
