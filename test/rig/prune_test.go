package rig_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPrune runs build.sh's pruning (image/prune.sh) on a cache laid out
// by hand: of one stage's builds, only those unused for the keep time and
// not locked by a running VM go; the build in use now, another profile's
// (debian-zfs next to debian) and fresh ones stay. No VM, no build.
func TestPrune(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock not installed")
	}
	dir := t.TempDir()
	old := time.Now().Add(-10 * 24 * time.Hour)
	recent := time.Now().Add(-24 * time.Hour)
	key := func(c byte) string { return strings.Repeat(string(c), 16) }
	builds := []struct {
		name string
		used time.Time
		lock bool // a VM holds its lock
		want bool // still there after pruning
	}{
		{"debian-" + key('a'), old, false, false},
		{"debian-" + key('b'), recent, false, true},
		{"debian-" + key('c'), old, true, true},
		{"debian-" + key('d'), old, false, true}, // the one being built now
		{"debian-zfs-" + key('e'), old, false, true},
		{"iso-" + key('f'), old, false, true},
	}
	for _, b := range builds {
		p := filepath.Join(dir, b.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"used", "lock", "done"} {
			os.WriteFile(filepath.Join(p, f), nil, 0o644)
		}
		os.WriteFile(p+".lock", nil, 0o644)
		os.Chtimes(filepath.Join(p, "used"), b.used, b.used)
		if b.lock {
			f, err := os.Open(filepath.Join(p, "lock"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
				t.Fatal(err)
			}
		}
	}
	tgz := filepath.Join(dir, "debootstrap-"+key('0')+".tgz")
	os.WriteFile(tgz, nil, 0o644)
	os.WriteFile(tgz+".used", nil, 0o644)
	os.Chtimes(tgz+".used", old, old)

	_, file, _, _ := runtime.Caller(0)
	script := `set -eu
. "$1/image/prune.sh"
log() { echo "$*"; }
keep_days=7
prune "$2/debian-$key_glob" "$2/debian-` + key('d') + `"
prune "$2/debootstrap-$key_glob.tgz" ""`
	out, err := exec.Command("sh", "-c", script, "sh", filepath.Dir(file), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("prune: %v: %s", err, out)
	}
	for _, b := range builds {
		_, err := os.Stat(filepath.Join(dir, b.name))
		if got := err == nil; got != b.want {
			t.Errorf("%s: there after pruning: %v, want %v", b.name, got, b.want)
		}
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	for _, gone := range []string{"debian-" + key('a') + ".lock", filepath.Base(tgz), filepath.Base(tgz) + ".used"} {
		if slices.Contains(left, gone) {
			t.Errorf("%s left behind", gone)
		}
	}
	if want := "prune " + filepath.Join(dir, "debian-"+key('a')) + " (unused for 7 days)\nprune " + tgz + " (unused for 7 days)\n"; string(out) != want {
		t.Errorf("log:\n%s\nwant:\n%s", out, want)
	}
}
