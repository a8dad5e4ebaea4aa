package secrets

import (
	"os"
	"strings"
	"testing"
)

// TestPrivateTempDirOnMacOS runs on macOS itself: the real $TMPDIR, its
// real filesystem named in the warning, never taken for memory.
func TestPrivateTempDirOnMacOS(t *testing.T) {
	name, ram := fsType(os.Getenv("TMPDIR"))
	if name == "" || ram {
		t.Fatalf("fsType($TMPDIR) = %q, %v", name, ram)
	}
	d, err := PrivateTempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if !strings.HasPrefix(d.Warning, "macOS has no tmpfs") || !strings.Contains(d.Warning, "on "+name+")") {
		t.Fatalf("warning %q", d.Warning)
	}
}
