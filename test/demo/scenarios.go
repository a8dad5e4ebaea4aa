package main

import (
	"context"
	"fmt"
	"strings"
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
