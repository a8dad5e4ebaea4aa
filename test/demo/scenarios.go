package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleetnix/fleet/test/installers"
)

// scenario is one demo: a story fleet tells on the rig.
type scenario struct {
	name    string
	summary string
	run     func(ctx context.Context, d *demo) error
}

// scenarios are every demo, in the order `-list` shows them. A new one
// (another installer, architecture, a reinstall) is a function and a row
// here.
var scenarios = []scenario{
	{"nas", "install the example's 3-disk NAS (ESP and root, an mdadm raid1 with xfs, six secrets) onto the rig's installer, reboot, verify every secret at first boot", nas},
	{"fleet", "install the example's three hosts (.age files in the input secrets, in an input named agenix-secrets, in the flake itself), each on an installer VM; then fleet verify --all checks them in one table, and fails naming the host and secret changed on a machine", fleetDemo},
	{"zfs", "install the example's ZFS NAS tank (ESP and root, a mirrored pool with datasets and one encrypted dataset keyed by an agenix secret) onto the rig's ZFS installer, reboot, verify; show the pool exported by the installer and imported by the installed system, the datasets mounted, the key loaded from /run/agenix", zfsDemo},
	{"iso", "the NixOS ISO: log in as nixos with the password set at its console; refuse a wrong password and a disk held by an array spanning another disk; install nas over an old install udev brought up (md, LVM, LUKS)", profile(installers.ISO)},
	{"kexec", "nixos-images' kexec installer (root with keys, no git, no cryptsetup): refuse vault's LUKS layout naming cryptsetup; install nas, the secrets fetched here and streamed in, no agent forwarded", profile(installers.Kexec)},
	{"arm", "the ARM NAS: the rig's installer on aarch64 (qemu's virt machine, UEFI, under TCG); refuse an x86_64 host (router) naming both architectures; install nas as the example declares it (aarch64-linux) with its hardware configuration generated, verify every secret and the initrd at first boot", profile(installers.Aarch64)},
	{"reinstall", "disaster recovery: install the NAS on the NixOS ISO's profile, write data, escrow its host key; replace the system disk, reinstall keeping the data disks with the escrowed key: same host key, same data, same array, every secret verified", reinstall},
}

func lookup(name string) (scenario, error) {
	var names []string
	for _, s := range scenarios {
		if s.name == name {
			return s, nil
		}
		names = append(names, s.name)
	}
	return scenario{}, fmt.Errorf("unknown scenario %q; known: %s", name, strings.Join(names, ", "))
}

func scenarioList() string {
	var b strings.Builder
	for _, s := range scenarios {
		fmt.Fprintf(&b, "  %-8s %s\n", s.name, s.summary)
	}
	return b.String()
}
