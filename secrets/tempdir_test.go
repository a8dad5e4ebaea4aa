package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// fakeTempEnv is a system for tempBase: dirs maps the directories that
// exist (made under a temp dir) to their filesystem, "tmpfs" meaning in
// memory.
func fakeTempEnv(t *testing.T, goos string, env map[string]string, fs map[string]string) tempEnv {
	return tempEnv{
		goos:    goos,
		getenv:  func(k string) string { return env[k] },
		shm:     "/dev/shm",
		runUser: "/run/user/1000",
		fsType: func(p string) (string, bool) {
			name, ok := fs[p]
			if !ok {
				return "ext4", false
			}
			return name, name == "tmpfs" || name == "ramfs"
		},
	}
}

// TestTempBase: where plaintext may go, on Linux and on macOS.
func TestTempBase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		goos    string
		env     map[string]string
		fs      map[string]string
		base    string
		warning string
		err     string
	}{
		{name: "linux, XDG_RUNTIME_DIR on tmpfs", goos: "linux", env: map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, fs: map[string]string{"/run/user/1000": "tmpfs"}, base: "/run/user/1000"},
		{name: "linux, no XDG_RUNTIME_DIR", goos: "linux", fs: map[string]string{"/dev/shm": "tmpfs"}, base: "/dev/shm"},
		{name: "linux, ramfs", goos: "linux", env: map[string]string{"XDG_RUNTIME_DIR": "/mnt/ram"}, fs: map[string]string{"/mnt/ram": "ramfs"}, base: "/mnt/ram"},
		{name: "linux, XDG_RUNTIME_DIR on a disk", goos: "linux", env: map[string]string{"XDG_RUNTIME_DIR": "/home/u/run"}, fs: map[string]string{"/dev/shm": "tmpfs"},
			err: "$XDG_RUNTIME_DIR (/home/u/run) is on ext4, not in memory: the plaintext would reach a disk\nhint: set XDG_RUNTIME_DIR to a tmpfs directory, such as /dev/shm, which is one"},
		{name: "linux, /dev/shm on a disk", goos: "linux", fs: map[string]string{"/dev/shm": "xfs", "/run/user/1000": "tmpfs"},
			err: "/dev/shm is on xfs, not in memory: the plaintext would reach a disk\nhint: set XDG_RUNTIME_DIR to a tmpfs directory, such as /run/user/1000, which is one"},
		{name: "linux, no tmpfs anywhere", goos: "linux", env: map[string]string{"XDG_RUNTIME_DIR": "/home/u/run"},
			err: "$XDG_RUNTIME_DIR (/home/u/run) is on ext4, not in memory: the plaintext would reach a disk\nhint: mount a tmpfs and point XDG_RUNTIME_DIR at it (mount -t tmpfs -o mode=0700 tmpfs DIR)"},
		{name: "macOS", goos: "darwin", env: map[string]string{"TMPDIR": "/var/folders/xy/abc/T/", "XDG_RUNTIME_DIR": "/Volumes/ram"}, fs: map[string]string{"/var/folders/xy/abc/T/": "apfs"},
			base: "/var/folders/xy/abc/T", warning: "macOS has no tmpfs: the plaintext goes to $TMPDIR (/var/folders/xy/abc/T, on apfs), a per-user directory on disk, and is removed when the edit ends"},
		{name: "macOS, no TMPDIR", goos: "darwin",
			err: "no place for the plaintext: TMPDIR is not set\nhint: run from a normal macOS session, where TMPDIR is the per-user temporary directory"},
	} {
		base, warning, err := tempBase(fakeTempEnv(t, tc.goos, tc.env, tc.fs))
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: got %q, %v\nwant error %s", tc.name, base, err, tc.err)
			}
			if strings.HasPrefix(tc.err, "$XDG") || strings.HasPrefix(tc.err, "/dev/shm") {
				if !errors.Is(err, ErrNotInMemory) {
					t.Errorf("%s: %v is not ErrNotInMemory", tc.name, err)
				}
			}
			continue
		}
		if err != nil || base != tc.base || warning != tc.warning {
			t.Errorf("%s: got %q, %q, %v\nwant %q, %q", tc.name, base, warning, err, tc.base, tc.warning)
		}
	}
}

// TestPrivateTempDirMacOS: on macOS the directory is made in $TMPDIR,
// 0700, with the warning, and swept like anywhere else.
func TestPrivateTempDirMacOS(t *testing.T) {
	tmp := t.TempDir()
	env := fakeTempEnv(t, "darwin", map[string]string{"TMPDIR": tmp + "/"}, map[string]string{tmp + "/": "apfs"})
	stale := filepath.Join(tmp, TempPlainPrefix+"123")
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := privateTempDir(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	st, err := os.Stat(d.Path)
	if err != nil || filepath.Dir(d.Path) != tmp || st.Mode().Perm() != 0o700 || !strings.HasPrefix(d.Warning, "macOS has no tmpfs: the plaintext goes to $TMPDIR ("+tmp+", on apfs)") {
		t.Fatalf("%+v, %v, %v", d, st, err)
	}
	if !slices.Equal(d.Swept, []string{stale}) {
		t.Fatalf("swept %v, want %v", d.Swept, stale)
	}
}

// TestPrivateTempDirSweep: directories of dead processes (no lock) are
// removed, plaintext and all; a live one (locked, here by another
// TempDir) and other users' or other names are left; Remove removes.
func TestPrivateTempDirSweep(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/dev/shm")
	}
	base := t.TempDir()
	env := fakeTempEnv(t, "linux", map[string]string{"XDG_RUNTIME_DIR": base}, map[string]string{base: "tmpfs"})
	live, err := privateTempDir(env)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	os.WriteFile(filepath.Join(live.Path, "s.age"), []byte("LIVE-PLAINTEXT"), 0o600)
	dead := filepath.Join(base, TempPlainPrefix+"4242")
	os.MkdirAll(filepath.Join(dead, "sub"), 0o700)
	os.WriteFile(filepath.Join(dead, "sub", "s.age"), []byte("DEAD-PLAINTEXT"), 0o600)
	other := filepath.Join(base, "not-fleet")
	os.Mkdir(other, 0o700)
	file := filepath.Join(base, TempPlainPrefix+"file")
	os.WriteFile(file, nil, 0o600)

	d, err := privateTempDir(env)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Swept, []string{dead}) {
		t.Errorf("swept %v, want only %s", d.Swept, dead)
	}
	for _, p := range []string{filepath.Join(live.Path, "s.age"), other, file, d.Path} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead edit's directory is still there: %v", err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s: %v", d.Path, err)
	}
	// the real system: /dev/shm is tmpfs here
	t.Setenv("XDG_RUNTIME_DIR", "")
	real, err := PrivateTempDir()
	if err != nil {
		t.Fatal(err)
	}
	defer real.Remove()
	if !strings.HasPrefix(real.Path, "/dev/shm/"+TempPlainPrefix) || real.Warning != "" {
		t.Fatalf("%+v", real)
	}
}
