// Package nixtest runs the real nix and git CLIs for tests: nix with a
// private chroot store and home (no daemon, nothing written to /nix or the
// user's home), git with a fixed identity.
package nixtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/test/testenv"
)

// Require skips t unless every named program is installed.
func Require(t testenv.TB, programs ...string) {
	t.Helper()
	testenv.Programs(t, programs...)
}

// Run runs args in dir with env added and returns the trimmed output;
// a failure ends the test with the output.
func Run(t testenv.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Git runs git in dir as a fixed committer.
func Git(t testenv.TB, dir string, args ...string) string {
	t.Helper()
	return Run(t, dir, []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"},
		append([]string{"git", "-C", dir}, args...)...)
}

// Repo makes a git repository holding files (a name ending in .sh is
// made executable) in one commit on branch main.
func Repo(t testenv.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "-q", "-b", "main")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-qm", "init")
	return dir
}

// Store is a private nix store and home (nix-bin 2.8 as root without a
// daemon needs the empty build-users-group), offline: no binary cache is
// asked for what is fetched or built.
type Store struct {
	t    testenv.TB
	Path string   // the chroot store (--store)
	Env  []string // HOME, XDG_CACHE_HOME, NIX_CONFIG for nix calls
}

// NewStore makes a private store that lives as long as the test.
func NewStore(t testenv.TB) *Store {
	t.Helper()
	Require(t, "nix")
	home := t.TempDir()
	return &Store{t: t, Path: filepath.Join(home, "store"),
		Env: []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "NIX_CONFIG=build-users-group =\nsubstituters ="}}
}

// Nix runs the nix CLI (flakes enabled) in dir against the store.
func (s *Store) Nix(dir string, args ...string) string {
	s.t.Helper()
	return Run(s.t, dir, s.Env, append([]string{"nix", "--extra-experimental-features", "nix-command flakes", "--store", s.Path}, args...)...)
}

// Nix runs the nix CLI in dir with a private store of its own.
func Nix(t testenv.TB, dir string, args ...string) string {
	t.Helper()
	return NewStore(t).Nix(dir, args...)
}

// Lock writes flakeDir's flake.lock with the real nix (for a git flake,
// flake.nix must be tracked first).
func Lock(t testenv.TB, flakeDir string) {
	t.Helper()
	Nix(t, flakeDir, "flake", "lock", flakeDir)
}

// ClientEnv is the environment of a nix that a program under test runs
// (without --store): Env, with the store in NIX_CONFIG.
func (s *Store) ClientEnv() []string {
	out := make([]string, len(s.Env))
	for i, kv := range s.Env {
		if strings.HasPrefix(kv, "NIX_CONFIG=") {
			kv += "\nstore = " + s.Path
		}
		out[i] = kv
	}
	return out
}
