// Package testenv decides what a test does when a real part it needs
// (a program, root, a kernel feature) is missing: it skips, with the
// reason, on a developer's machine, and fails under FLEET_STRICT=1, which
// scripts/test sets once it has installed scripts/packages. There a
// missing part is a broken set-up that a skip would hide.
//
// It also defines [TB], the part of a test the project's test helpers
// (sshtest, nixtest, rig, homelab) use. *testing.T satisfies it, and so
// does [Program], which lets a plain program (the demo) drive the same
// helpers.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// TB is what the test helpers need of a test: *testing.T and
// testing.TB satisfy it, and so does [Program].
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// Strict reports whether missing parts fail tests (FLEET_STRICT=1).
func Strict() bool { return os.Getenv("FLEET_STRICT") == "1" }

// Missing ends t because a part it needs is missing: a skip, or under
// FLEET_STRICT=1 a failure.
func Missing(t TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (FLEET_STRICT=1: scripts/test installs scripts/packages, so this is a broken set-up)", msg)
	}
	t.Skipf("%s", msg)
}

// Programs ends t (see [Missing]) unless every program is on PATH.
func Programs(t TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			Missing(t, "%s not installed (scripts/packages lists its Debian package)", p)
		}
	}
}

// Root ends t (see [Missing]) unless it runs as root.
func Root(t TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root: %s", why)
	}
}
