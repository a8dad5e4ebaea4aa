package nixeval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// confineFixture lays out what a secrets repository looks like, with a
// file outside it:
//
//	base/outside.txt, base/outside.nix, base/outdir/x
//	base/repo/.git/                    (or a .git file, as worktrees have)
//	base/repo/keys/alice.pub
//	base/repo/secrets/secrets.nix      (the rules, written by each case)
//	base/repo/secrets/link -> base/outside.txt
//	base/repo/secrets/linkdir -> base/outdir
//	base/repo/secrets/inlink -> ../keys/alice.pub
func confineFixture(t *testing.T, gitDir bool) (base, repo, rules string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	repo = filepath.Join(base, "repo")
	for _, d := range []string{"keys", "secrets", "../outdir"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if gitDir {
		if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		write(filepath.Join(repo, ".git"), "gitdir: /elsewhere/.git/worktrees/repo\n")
	}
	write(filepath.Join(base, "outside.txt"), "root:SECRET-HASH:19000::::::\n")
	write(filepath.Join(base, "outside.nix"), `"SECRET-FROM-OUTSIDE"`)
	write(filepath.Join(base, "outdir", "x"), "SECRET-X")
	write(filepath.Join(repo, "keys", "alice.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz alice\n")
	for link, target := range map[string]string{"link": filepath.Join(base, "outside.txt"), "linkdir": filepath.Join(base, "outdir"), "inlink": "../keys/alice.pub"} {
		if err := os.Symlink(target, filepath.Join(repo, "secrets", link)); err != nil {
			t.Fatal(err)
		}
	}
	return base, repo, filepath.Join(repo, "secrets", "secrets.nix")
}

func evalRules(t *testing.T, rules, src string, opts Options) (string, error) {
	t.Helper()
	if err := os.WriteFile(rules, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := EvalFileJSON(context.Background(), rules, opts)
	if err != nil {
		return "", err
	}
	return string(MarshalJSON(v)), nil
}

// TestConfinedToRepo: the evaluator reads files of the repository that
// holds the rules (its git work tree), through relative paths that climb
// out of the rules' directory and symlinks that stay inside, and nothing
// outside it, however the path is spelled.
func TestConfinedToRepo(t *testing.T) {
	for _, gitDir := range []bool{true, false} {
		base, repo, rules := confineFixture(t, gitDir)
		const alice = `"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D/fPPTL06ghi4BlBiTqBz alice\n"`
		for _, tc := range []struct{ src, want string }{
			{`builtins.readFile ../keys/alice.pub`, alice},
			{`builtins.readFile ./inlink`, alice},
			{`builtins.attrNames (builtins.readDir ../keys)`, `["alice.pub"]`},
			{`builtins.pathExists ../keys/alice.pub`, `true`},
			{`builtins.readFile "${toString ../keys}/alice.pub"`, alice},
			{`builtins.getEnv "FLEET_CONFINE_TEST"`, `"kept"`},
			// a path value that is never read is just a name
			{`toString /etc/shadow`, `"/etc/shadow"`},
			// a symlink is copied as a link (its target is a name, not read)
			{`builtins.substring 44 100 "${./link}"`, `"link"`},
		} {
			t.Setenv("FLEET_CONFINE_TEST", "kept")
			got, err := evalRules(t, rules, tc.src, Options{})
			if err != nil || got != tc.want {
				t.Errorf("git dir %v: %s = %s, %v; want %s", gitDir, tc.src, got, err, tc.want)
			}
		}
		forbidden := func(p, to string) string {
			if to != "" {
				return "access to path '" + p + "' is forbidden: it resolves to '" + to + "', outside the repository " + repo
			}
			return "access to path '" + p + "' is forbidden: it is outside the repository " + repo
		}
		for _, tc := range []struct{ src, path, at, to string }{
			{`builtins.readFile /etc/shadow`, "/etc/shadow", "", ""},
			{`builtins.readFile ../../outside.txt`, filepath.Join(base, "outside.txt"), "", ""},
			{`builtins.readFile "` + base + `/repo/../outside.txt"`, filepath.Join(base, "outside.txt"), "", ""},
			{`builtins.readDir /.`, "/", "", ""},
			{`builtins.readDir ../..`, base, "", ""},
			{`import ../../outside.nix`, filepath.Join(base, "outside.nix"), "", ""},
			{`import /etc`, "/etc", "", ""},
			{`builtins.pathExists /etc/shadow`, "/etc/shadow", "", ""},
			{`"${/etc/passwd}"`, "/etc/passwd", "1:4", ""},
			{`builtins.toJSON ../../outside.txt`, filepath.Join(base, "outside.txt"), "", ""},
			{`{ a = ../../outdir; }`, filepath.Join(base, "outdir"), "1:3", ""},
			// symlinks inside the repository that lead out of it
			{`builtins.readFile ./link`, filepath.Join(repo, "secrets", "link"), "", filepath.Join(base, "outside.txt")},
			{`builtins.readFile ./linkdir/x`, filepath.Join(repo, "secrets", "linkdir", "x"), "", filepath.Join(base, "outdir", "x")},
			{`builtins.readDir ./linkdir`, filepath.Join(repo, "secrets", "linkdir"), "", filepath.Join(base, "outdir")},
			{`"${./linkdir/x}"`, filepath.Join(repo, "secrets", "linkdir", "x"), "1:4", filepath.Join(base, "outdir", "x")},
		} {
			if tc.at == "" {
				tc.at = "1:1"
			}
			_, err := evalRules(t, rules, tc.src, Options{})
			if want := rules + ":" + tc.at + ": " + forbidden(tc.path, tc.to); !errors.Is(err, ErrForbidden) || err.Error() != want {
				t.Errorf("git dir %v: %s:\n got %v\nwant %s (ErrForbidden)", gitDir, tc.src, err, want)
			}
		}
	}
}

// TestConfinedNoGit: with no git work tree around it, the rules file's
// own directory is the limit: ../keys is out of reach.
func TestConfinedNoGit(t *testing.T) {
	_, repo, rules := confineFixture(t, true)
	if err := os.Remove(filepath.Join(repo, ".git")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(rules)
	if got := RepoRoot(dir); got != dir {
		t.Fatalf("RepoRoot(%s) = %s, want the directory itself", dir, got)
	}
	_, err := evalRules(t, rules, `builtins.readFile ../keys/alice.pub`, Options{})
	want := rules + ":1:1: access to path '" + filepath.Join(repo, "keys", "alice.pub") + "' is forbidden: it is outside the repository " + dir
	if !errors.Is(err, ErrForbidden) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if got, err := evalRules(t, rules, `builtins.readFile ./inlink`, Options{Root: repo}); err != nil || got == "" {
		t.Fatalf("with Root %s: %s, %v", repo, got, err)
	}
}

func TestRepoRoot(t *testing.T) {
	_, repo, rules := confineFixture(t, false)
	for _, d := range []string{repo, filepath.Dir(rules), filepath.Join(repo, "keys")} {
		if got := RepoRoot(d); got != repo {
			t.Errorf("RepoRoot(%s) = %s, want %s", d, got, repo)
		}
	}
}
