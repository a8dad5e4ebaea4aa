package disko

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestEndStateDiff checks the end-state comparison TestEndStateOnRig
// relies on: a missing section, a line only one side has (repeats
// counted), a reordered section, and a section only fleet's has.
func TestEndStateDiff(t *testing.T) {
	disko := "== a\nx\ny\ny\n\n== b\n1\n2\n\n== c\nkeep\n"
	fleet := "== a\nx\ny\nz\n\n== b\n2\n1\n\n== d\nextra\n"
	want := []string{
		"== a", "  - y", "  + z",
		"== b", "  the same lines in another order",
		"== c", "  section missing from fleet's end state",
		"== d", "  section only in fleet's end state:", "  + extra",
	}
	if got := endstateDiff(disko, fleet); !slices.Equal(got, want) {
		t.Errorf("endstateDiff:\n got %q\nwant %q", got, want)
	}
	if got := endstateDiff(disko, disko); len(got) != 0 {
		t.Errorf("endstateDiff of a snapshot with itself: %q, want nothing", got)
	}
	if got := endstateBody("# header\n# more\n== a\nx\n"); got != "== a\nx\n" {
		t.Errorf("endstateBody: %q", got)
	}
}

// TestEndStateLayouts checks which layouts the rig test runs: the quick
// set by default; zpool layouts apart; every
// refused layout refused by Parse as the rig test expects.
func TestEndStateLayouts(t *testing.T) {
	t.Setenv("FLEET_ENDSTATE_ONLY", "")
	t.Setenv("FLEET_ENDSTATE", "")
	plain, zfs := endstateLayouts(t)
	if want := slices.Sorted(slices.Values(endstateQuick)); !slices.Equal(plain, want) || len(zfs) != 0 {
		t.Errorf("default layouts: %q and zpool %q, want %q and none", plain, zfs, want)
	}
	t.Setenv("FLEET_ENDSTATE_ONLY", "zfs swap")
	if plain, zfs := endstateLayouts(t); !slices.Equal(plain, []string{"swap"}) || !slices.Equal(zfs, []string{"zfs"}) {
		t.Errorf("FLEET_ENDSTATE_ONLY=%q: %q and zpool %q, want [swap] and [zfs]", "zfs swap", plain, zfs)
	}
	t.Setenv("FLEET_ENDSTATE_ONLY", "")
	t.Setenv("FLEET_ENDSTATE", "zfs")
	if plain, zfs := endstateLayouts(t); len(plain) != 0 || !slices.Equal(zfs, []string{"complex", "zfs-over-legacy"}) {
		t.Errorf("FLEET_ENDSTATE=zfs: %q and zpool %q, want none and [complex zfs-over-legacy] (the others unrecorded)", plain, zfs)
	}
	// Each refusal the rig test expects is the one Parse gives, before
	// anything runs.
	for name, refusal := range endstateRefused {
		_, err := Parse([]byte(readTestdata(t, "endstate/"+name+"/devices.json")))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), refusal) {
			t.Errorf("%s: Parse: %v, want ErrUnsupported with %q", name, err, refusal)
		}
	}
}
