package main

import (
	"testing"

	"github.com/fleetnix/fleet/disko"
)

// TestDiskoScripts covers `fleet disko plan` and apply's refusals; the
// loop-device runs live in the disko package's tests.
func TestDiskoScripts(t *testing.T) { runScripts(t, "disko", nil) }

// TestConfirmPrompt: the typed confirmation shows each disk's device path
// (and the node it resolves to), not only its name (issue 14), and what
// destroy takes down on it first (issue 16.4).
func TestConfirmPrompt(t *testing.T) {
	got := confirmPrompt([]disko.Target{
		{Name: "main", Device: "/dev/disk/by-id/ata-X", Node: "/dev/sda", Size: 500107862016},
		{Name: "data", Device: "/dev/vdb", Node: "/dev/vdb", TakeDown: []string{"LVM volume group old: deactivated", "md array md127 (raid1) of vdb1, vdc1: stopped", "vdb1: linux_raid_member signature wiped"}},
	})
	want := "This erases every byte on:\n" +
		"  main  /dev/disk/by-id/ata-X (/dev/sda), 500.1 GB\n" +
		"  data  /dev/vdb\n" +
		"        first: LVM volume group old: deactivated\n" +
		"        first: md array md127 (raid1) of vdb1, vdc1: stopped\n" +
		"        first: vdb1: linux_raid_member signature wiped\n" +
		"Type the disk names (main data) to continue: "
	if got != want {
		t.Fatalf("prompt:\n%s\nwant:\n%s", got, want)
	}
}
