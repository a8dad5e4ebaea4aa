package installers

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// hardwareLines are what the installed host's generated hardware configuration must
// say on the rig's aarch64 installer: the qemu guest profile, the drivers
// of its virtio disks (virtio_blk on virtio_pci) among the initrd's
// modules, and the platform.
var hardwareLines = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^  imports = \[ \(modulesPath \+ "/profiles/qemu-guest\.nix"\) \];$`),
	regexp.MustCompile(`(?m)^  boot\.initrd\.availableKernelModules = \[ (?:"[a-z0-9_]+" )*"virtio_blk" (?:"[a-z0-9_]+" )*"virtio_pci" (?:"[a-z0-9_]+" )*\];$`),
	regexp.MustCompile(`(?m)^  nixpkgs\.hostPlatform = lib\.mkDefault "aarch64-linux";$`),
}

// initrdRow is the first-boot table's initrd row once the configuration
// declares the root disk's drivers.
var initrdRow = regexp.MustCompile(`(?m)^initrd +/dev/vda\d +ok: the initrd declares virtio_blk, virtio_pci$`)

// hardwareConfig checks what --generate-hardware-config did for the
// installed host:
// the file in the flake names the VM's disk controllers' drivers and its
// platform; the installed system was built from it (the stand-in
// nixos-install recorded the initrd modules the configuration declared);
// the first-boot table's initrd row says the root's drivers are among
// them.
func (r *Run) hardwareConfig(ctx context.Context, summary string) ([]string, error) {
	p := HardwareFile(r.fl, r.P.Installed())
	b, err := os.ReadFile(p)
	if err != nil {
		return []string{"no hardware configuration: " + err.Error()}, nil
	}
	var problems []string
	for _, re := range hardwareLines {
		if !re.Match(b) {
			problems = append(problems, fmt.Sprintf("%s lacks a line matching %s:\n%s", p, re, b))
		}
	}
	r.Say("the generated %s names the VM's disk drivers:\n%s", "hosts/"+r.P.Installed()+"-hardware.nix", indent(string(b)))
	got, err := r.vm.Run(ctx, "cat", "/etc/fleet-rig/initrd-modules")
	if err != nil {
		return nil, fmt.Errorf("read the installed system's initrd modules: %w", err)
	}
	if mods := strings.Fields(got); !slices.Contains(mods, "virtio_blk") || !slices.Contains(mods, "virtio_pci") {
		problems = append(problems, fmt.Sprintf("the installed system's configuration declared the initrd modules %q, without the generated virtio_blk and virtio_pci", mods))
	}
	if !initrdRow.MatchString(summary) {
		problems = append(problems, "the first-boot table lacks the initrd row "+initrdRow.String())
	}
	return problems, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
