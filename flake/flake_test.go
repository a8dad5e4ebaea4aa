package flake

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
)

// TestNarHashMatchesNixLock locks a git input with the real nix, clones the
// repository at the locked rev the way the installer does, and checks that
// our NAR hash of the clone equals the lock's narHash.
func TestNarHashMatchesNixLock(t *testing.T) {
	sec := nixtest.Repo(t, map[string]string{"secrets.nix": "{ }\n", "nas/smb.age": "age\x00binary", "run.sh": "#!/bin/sh\n", "deep/a/b/c.txt": "c"})
	os.Symlink("secrets.nix", filepath.Join(sec, "link"))
	nixtest.Git(t, sec, "add", "link")
	nixtest.Git(t, sec, "commit", "-qm", "link")
	fl := t.TempDir()
	os.WriteFile(filepath.Join(fl, "flake.nix"), []byte(`{ inputs.secrets = { url = "git+file://`+sec+`"; flake = false; }; outputs = { self, secrets }: { }; }`), 0o644)
	nixtest.Lock(t, fl)
	lock, err := ReadLock(filepath.Join(fl, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := lock.Input("secrets")
	if err != nil {
		t.Fatal(err)
	}
	if in.IsFlake || in.Locked.Type != "git" || len(in.Locked.Rev) != 40 || in.Locked.CloneURL() != "file://"+sec {
		t.Fatalf("input: %+v", in)
	}
	clone := filepath.Join(t.TempDir(), "secrets")
	nixtest.Run(t, "/", nil, "git", "clone", "-q", in.Locked.CloneURL(), clone)
	nixtest.Git(t, clone, "checkout", "-q", in.Locked.Rev)
	got, err := NarHash(clone)
	if err != nil {
		t.Fatal(err)
	}
	if got != in.Locked.NarHash {
		t.Fatalf("NarHash = %s, flake.lock says %s", got, in.Locked.NarHash)
	}
	// One changed byte changes it.
	os.WriteFile(filepath.Join(clone, "deep/a/b/c.txt"), []byte("d"), 0o644)
	if again, _ := NarHash(clone); again == got {
		t.Fatal("hash did not change with the content")
	}
}

func TestNarHashMatchesNixHashPath(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/empty"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/x.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "zero"), nil, 0o600)
	os.Symlink("../zero", filepath.Join(dir, "a/l"))
	want := nixtest.Nix(t, "/", "hash", "path", dir)
	got, err := NarHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("NarHash = %s, nix hash path = %s", got, want)
	}
	base32 := nixtest.Nix(t, "/", "hash", "path", "--base32", dir)
	if same, err := SameHash(got, "sha256:"+base32); err != nil || !same {
		t.Fatalf("SameHash(%s, sha256:%s) = %v, %v", got, base32, same, err)
	}
	if same, _ := SameHash(got, "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); same {
		t.Fatal("different hashes compare equal")
	}
	if _, err := SameHash(got, "sha256-nope"); err == nil || err.Error() != `hash "sha256-nope": not a sha256 SRI hash` {
		t.Fatalf("bad hash: %v", err)
	}
}

func TestReadLockFollows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "flake.lock")
	os.WriteFile(p, []byte(`{
  "nodes": {
    "agenix": {"inputs": {"nixpkgs": ["nixpkgs"]}, "locked": {"type": "github", "owner": "ryantm", "repo": "agenix", "rev": "aaa", "narHash": "sha256-x"}},
    "nixpkgs": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "bbb", "narHash": "sha256-y"}},
    "secrets": {"flake": false, "locked": {"type": "git", "url": "ssh://git@10.0.2.2:2222/srv/secrets.git", "rev": "ccc", "narHash": "sha256-z"}, "original": {"type": "git", "url": "ssh://git@10.0.2.2:2222/srv/secrets.git"}},
    "root": {"inputs": {"agenix": "agenix", "nixpkgs": "nixpkgs", "secrets": "secrets", "pkgs2": ["agenix", "nixpkgs"]}}
  },
  "root": "root",
  "version": 7
}`), 0o644)
	l, err := ReadLock(p)
	if err != nil {
		t.Fatal(err)
	}
	in, err := l.Input("pkgs2")
	if err != nil || in.Node != "nixpkgs" || in.Locked.Rev != "bbb" || !in.IsFlake {
		t.Fatalf("follows: %+v %v", in, err)
	}
	sec, _ := l.Input("secrets")
	if sec.Locked.CloneURL() != "ssh://git@10.0.2.2:2222/srv/secrets.git" || sec.IsFlake {
		t.Fatalf("secrets: %+v", sec)
	}
	ins, err := l.Inputs()
	if err != nil || len(ins) != 4 || ins[0].Name != "agenix" {
		t.Fatalf("inputs: %+v %v", ins, err)
	}
	_, err = l.Input("secret")
	if !errors.Is(err, ErrNoInput) || !strings.Contains(err.Error(), "hint: the inputs are: agenix, nixpkgs, pkgs2, secrets") {
		t.Fatalf("missing input: %v", err)
	}
}

func TestReadLockErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ content, want string }{
		"garbage": {"{", "unexpected end of JSON input\nhint: regenerate it with nix flake lock"},
		"version": {`{"version": 3, "nodes": {"root": {}}}`, "version 3 is not supported (5 to 7 are)"},
		"noroot":  {`{"version": 7, "root": "r", "nodes": {}}`, `no root node "r"`},
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(tc.content), 0o644)
		_, err := ReadLock(p)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want suffix %q", name, err, tc.want)
		}
	}
}

func TestLocalSourceGitTrackedOnly(t *testing.T) {
	repo := nixtest.Repo(t, map[string]string{"flake.nix": "{}", "hosts/nas.nix": "{}", "README": "x", "sub/flake.nix": "{}", "sub/mod.nix": "{}"})
	os.WriteFile(filepath.Join(repo, "untracked.nix"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(repo, "staged.nix"), []byte("{}"), 0o644)
	nixtest.Git(t, repo, "add", "staged.nix")
	os.Remove(filepath.Join(repo, "README"))
	s, err := LocalSource(context.Background(), &remote.Local{}, repo)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"flake.nix", "hosts/nas.nix", "staged.nix", "sub/flake.nix", "sub/mod.nix"}
	if !s.Git || !reflect.DeepEqual(s.Files, want) {
		t.Fatalf("files %v, want %v", s.Files, want)
	}
	// A flake in a subdirectory of the repository sees its own files.
	s, err = LocalSource(context.Background(), &remote.Local{}, filepath.Join(repo, "sub"))
	if err != nil || !reflect.DeepEqual(s.Files, []string{"flake.nix", "mod.nix"}) {
		t.Fatalf("sub: %v %v", s.Files, err)
	}
	// An untracked flake.nix is invisible to Nix: say so.
	d := filepath.Join(repo, "new")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "flake.nix"), []byte("{}"), 0o644)
	_, err = LocalSource(context.Background(), &remote.Local{}, d)
	if !errors.Is(err, ErrNoFlake) || !strings.Contains(err.Error(), "is not tracked by git") {
		t.Fatalf("untracked flake: %v", err)
	}
	// A plain directory is a path flake: everything goes.
	plain := t.TempDir()
	os.WriteFile(filepath.Join(plain, "flake.nix"), []byte("{}"), 0o644)
	s, err = LocalSource(context.Background(), &remote.Local{}, plain)
	if err != nil || s.Git || s.Files != nil {
		t.Fatalf("path flake: %+v %v", s, err)
	}
	_, err = LocalSource(context.Background(), &remote.Local{}, t.TempDir())
	if !errors.Is(err, ErrNoFlake) {
		t.Fatalf("no flake: %v", err)
	}
}

// TestLocalSourceWithoutGit: a git flake read where git cannot run is an
// error, never taken for a path flake (which would stage .git and
// untracked files); a plain directory still is a path flake; a cancelled
// read is the cancellation.
func TestLocalSourceWithoutGit(t *testing.T) {
	repo := nixtest.Repo(t, map[string]string{"flake.nix": "{}"})
	plain := t.TempDir()
	os.WriteFile(filepath.Join(plain, "flake.nix"), []byte("{}"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LocalSource(ctx, &remote.Local{}, repo); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := LocalSource(context.Background(), &remote.Local{}, repo)
	if err == nil || !strings.HasPrefix(err.Error(), "read which files the flake's git repository tracks: ") || !strings.HasSuffix(err.Error(), "hint: fleet needs git to stage a git flake as Nix sees it") {
		t.Fatalf("git flake without git: %v", err)
	}
	s, err := LocalSource(context.Background(), &remote.Local{}, plain)
	if err != nil || s.Git {
		t.Fatalf("path flake without git: %+v %v", s, err)
	}
}
