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
    "agenix": {"inputs": {"nixpkgs": ["nixpkgs"]}, "locked": {"type": "github", "owner": "ryantm", "repo": "agenix", "rev": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "narHash": "sha256-x"}},
    "nixpkgs": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "narHash": "sha256-y"}},
    "secrets": {"flake": false, "locked": {"type": "git", "url": "ssh://git@10.0.2.2:2222/srv/secrets.git", "rev": "cccccccccccccccccccccccccccccccccccccccc", "narHash": "sha256-z"}, "original": {"type": "git", "url": "ssh://git@10.0.2.2:2222/srv/secrets.git"}},
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
	if err != nil || in.Node != "nixpkgs" || in.Locked.Rev != "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" || !in.IsFlake {
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

// A lock's values reach git's command line on the installer, with the
// operator's agent forwarded: every value git could take for an option,
// or for a transport fleet does not use, is refused when the lock is read
// (#14 item 3). The error names the node and the value.
func TestReadLockRefusesWhatGitWouldMisread(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, c := range []struct {
		name   string
		locked string // the secrets node's "locked" object
		want   string // the error, after "read flake lock PATH: "
	}{{
		name:   "rev is an option",
		locked: `{"type": "git", "url": "ssh://git@host/s.git", "rev": "--upload-pack=touch /tmp/x;:"}`,
		want:   `node "secrets": flake lock value refused: rev "--upload-pack=touch /tmp/x;:" is not a commit hash (40 or 64 hex digits)`,
	}, {
		name:   "rev is short",
		locked: `{"type": "git", "url": "ssh://git@host/s.git", "rev": "0123abc"}`,
		want:   `node "secrets": flake lock value refused: rev "0123abc" is not a commit hash (40 or 64 hex digits)`,
	}, {
		name:   "url is an option",
		locked: `{"type": "git", "url": "--upload-pack=touch /tmp/x;:", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: url "--upload-pack=touch /tmp/x;:" starts with -`,
	}, {
		name:   "url runs a command (git's ext transport)",
		locked: `{"type": "git", "url": "ext::sh -c touch% /tmp/x", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: url "ext::sh -c touch% /tmp/x": fleet fetches git inputs over file, ssh, https, http only`,
	}, {
		name:   "url host is an option",
		locked: `{"type": "git", "url": "git+ssh://-oProxyCommand=x/s.git", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: url "git+ssh://-oProxyCommand=x/s.git": fleet fetches git inputs over file, ssh, https, http only`,
	}, {
		name:   "scp-like url",
		locked: `{"type": "git", "url": "git@host:s.git", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: url "git@host:s.git": fleet fetches git inputs over file, ssh, https, http only`,
	}, {
		name:   "ref is an option",
		locked: `{"type": "git", "url": "ssh://git@host/s.git", "ref": "--orphan", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: ref "--orphan" is not a git ref name`,
	}, {
		name:   "github owner climbs",
		locked: `{"type": "github", "owner": "..", "repo": "x", "rev": "` + rev + `"}`,
		want:   `node "secrets": flake lock value refused: github owner/repo ".."/"x" is not a repository name`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "flake.lock")
			os.WriteFile(p, []byte(`{"version": 7, "root": "root", "nodes": {"root": {"inputs": {"secrets": "secrets"}}, "secrets": {"flake": false, "locked": `+c.locked+`}}}`), 0o644)
			_, err := ReadLock(p)
			want := "read flake lock " + p + ": " + c.want + "\nhint: regenerate it with nix flake lock, and check who changed it"
			if !errors.Is(err, ErrBadLock) || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
		})
	}
	// What nix writes is read.
	p := filepath.Join(t.TempDir(), "flake.lock")
	os.WriteFile(p, []byte(`{"version": 7, "root": "root", "nodes": {"root": {"inputs": {"a": "a", "b": "b", "c": "c"}},
 "a": {"locked": {"type": "git", "url": "file:///srv/secrets?ref=main", "rev": "`+rev+`"}},
 "b": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "`+rev+`"}},
 "c": {"locked": {"type": "gitlab", "owner": "group%2Fsub", "repo": "r.x", "rev": "`+rev+`"}}}}`), 0o644)
	if _, err := ReadLock(p); err != nil {
		t.Fatal(err)
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
