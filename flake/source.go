package flake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// Source is what Nix copies of a local flake: for a flake in a git
// repository only the files git tracks (paths relative to Dir), for a plain
// directory everything.
type Source struct {
	Dir   string   // the flake's directory
	Git   bool     // Dir is inside a git work tree
	Files []string // tracked files relative to Dir (Git only)
	// Root is the directory Nix copies into the store: the git work
	// tree's top (Dir or a parent of it), or Dir for a path flake. Paths
	// inside the flake's store path are relative to it.
	Root string
}

// ErrNoFlake: the directory has no flake.nix.
var ErrNoFlake = errors.New("not a flake")

// LocalSource finds the files of the flake in dir, running git through r.
func LocalSource(ctx context.Context, r remote.Runner, dir string) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "flake.nix")); err != nil {
		return nil, fmt.Errorf("%w: %s has no flake.nix\nhint: pass the flake's directory, e.g. --flake ./examples/homelab#nas", ErrNoFlake, abs)
	}
	s := &Source{Dir: abs, Root: abs}
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", abs, "rev-parse", "--is-inside-work-tree"}})
	if err != nil {
		// Only git's own "not a git repository" makes a path flake. A git
		// that cannot run (or was interrupted) must not turn a git flake
		// into a path flake: that would copy .git and untracked files.
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.StderrLine("not a git repository") != "" {
			return s, nil
		}
		if !errors.As(err, &ee) && !insideGitRepo(abs) {
			return s, nil // no git here, and no repository either
		}
		return nil, fmt.Errorf("read which files the flake's git repository tracks: %w\nhint: fleet needs git to stage a git flake as Nix sees it", err)
	}
	if strings.TrimSpace(string(res.Stdout)) != "true" {
		return s, nil // a path flake: everything is copied
	}
	// Tracked files (staged ones too, as Nix sees a dirty tree), relative
	// to the flake's directory; files deleted from the work tree are gone.
	// A monorepo's listing can pass the default limit: allow 64 MiB
	// (about a million paths).
	res, err = r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", abs, "ls-files", "-z", "--cached", "--full-name", "--", "."}, MaxStdout: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("list the flake's git files: %w", err)
	}
	top, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", abs, "rev-parse", "--show-toplevel"}})
	if err != nil {
		return nil, fmt.Errorf("list the flake's git files: %w", err)
	}
	root := strings.TrimSpace(string(top.Stdout))
	s.Git, s.Root = true, root
	for _, f := range bytes.Split(res.Stdout, []byte{0}) {
		if len(f) == 0 {
			continue
		}
		rel, err := filepath.Rel(abs, filepath.Join(root, string(f)))
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if _, err := os.Lstat(filepath.Join(abs, rel)); err != nil {
			continue
		}
		s.Files = append(s.Files, filepath.ToSlash(rel))
	}
	if !slices.Contains(s.Files, "flake.nix") {
		return nil, fmt.Errorf("%w: flake.nix in %s is not tracked by git, so Nix would not see it\nhint: git add flake.nix", ErrNoFlake, abs)
	}
	return s, nil
}

// insideGitRepo reports whether dir or one of its parents holds .git.
func insideGitRepo(dir string) bool {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}
