package main

import (
	"context"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/rig"
)

// TestReinstallScenario runs `scripts/demo reinstall` as a test: the
// whole disaster-recovery story on the rig (issue 18), in one VM and
// three boots of it after the first (the installed system, the installer
// again over the new system disk, the reinstalled system).
func TestReinstallScenario(t *testing.T) {
	rig.Require(t)
	nixtest.Require(t, "git", "age", "nix")
	repo, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := lookup("reinstall")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if err := sc.run(ctx, &demo{t: t, repo: repo, name: sc.name}); err != nil {
		t.Fatal(err)
	}
}
