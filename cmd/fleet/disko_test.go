package main

import (
	"testing"

	"github.com/fleetnix/fleet/disko"
)

// TestDiskoScripts covers `fleet disko plan` and apply's refusals; the
// loop-device runs live in the disko package's tests.
func TestDiskoScripts(t *testing.T) { runScripts(t, "disko", nil) }

// TestConfirmPrompt: the typed confirmation shows each disk's device path
// (and the node it resolves to), not only its name (issue 14).
func TestConfirmPrompt(t *testing.T) {
	got := confirmPrompt([]disko.Target{
		{Name: "main", Device: "/dev/disk/by-id/ata-X", Node: "/dev/sda", Size: 500107862016},
		{Name: "data", Device: "/dev/vdb", Node: "/dev/vdb"},
	})
	want := "This erases every byte on:\n" +
		"  main  /dev/disk/by-id/ata-X (/dev/sda), 500.1 GB\n" +
		"  data  /dev/vdb\n" +
		"Type the disk names (main data) to continue: "
	if got != want {
		t.Fatalf("prompt:\n%s\nwant:\n%s", got, want)
	}
}
