package realpath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(base, "real", "sub"), 0o755)
	os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "link"))
	os.Symlink("../real/sub", filepath.Join(base, "real", "rel"))
	for in, want := range map[string]string{
		filepath.Join(base, "link", "sub", "x.age"):      filepath.Join(base, "real", "sub", "x.age"),
		filepath.Join(base, "link", "missing", "y", "z"): filepath.Join(base, "real", "missing", "y", "z"),
		filepath.Join(base, "real", "rel", "f"):          filepath.Join(base, "real", "sub", "f"),
		filepath.Join(base, "real"):                      filepath.Join(base, "real"),
		"/nonexistent-fleet-realpath/a":                  "/nonexistent-fleet-realpath/a",
	} {
		if got := Resolve(in); got != want {
			t.Errorf("Resolve(%s) = %s, want %s", in, got, want)
		}
	}
	for _, c := range []struct {
		p, root string
		ok      bool
	}{{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/x", "/", true}, {"/a/../b", "/a", false}} {
		if Within(filepath.Clean(c.p), c.root) != c.ok {
			t.Errorf("Within(%s, %s) != %v", c.p, c.root, c.ok)
		}
	}
}
