package nixeval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fleetnix/fleet/internal/realpath"
)

// ErrForbidden is matched (errors.Is) by errors about a file the
// evaluation may not touch: one outside its root ([Options.Root]).
var ErrForbidden = errors.New("access outside the repository")

// RepoRoot returns the directory an evaluation of a file in dir is
// confined to: the git work tree holding dir (the nearest directory, dir
// itself or above it, with a .git directory or file, as a worktree or a
// submodule has), or dir itself when there is none. It looks for .git
// without running git, and resolves symlinks first, so the answer names
// where the files really are.
func RepoRoot(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Clean(dir)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	for d := abs; ; {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return abs
		}
		d = parent
	}
}

// setRoot confines the evaluation to root, or to the repository holding
// dir when root is empty.
func (ev *evaluator) setRoot(root, dir string) {
	if root == "" {
		ev.root = RepoRoot(dir)
		return
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = filepath.Clean(root)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	ev.root = abs
}

// confine checks that the evaluation may touch the file at abs (an
// absolute path): it must lie inside the root once every symlink on the
// way is resolved, and with followLast its last component too (a path
// copied to the store keeps a final symlink as a link). It returns the
// resolved path, which is what must be opened.
func (ev *evaluator) confine(pos Pos, abs string, followLast bool) (string, error) {
	abs = filepath.Clean(abs)
	resolved := abs
	if followLast {
		resolved = realpath.Resolve(abs)
	} else if dir, base := filepath.Split(abs); base != "" {
		resolved = filepath.Join(realpath.Resolve(filepath.Clean(dir)), base)
	}
	if realpath.Within(resolved, ev.root) {
		return resolved, nil
	}
	if resolved != abs && realpath.Within(abs, ev.root) {
		return "", &Error{Pos: pos, Kind: ErrForbidden, Msg: fmt.Sprintf("access to path '%s' is forbidden: it resolves to '%s', outside the repository %s", abs, resolved, ev.root)}
	}
	return "", &Error{Pos: pos, Kind: ErrForbidden, Msg: fmt.Sprintf("access to path '%s' is forbidden: it is outside the repository %s", abs, ev.root)}
}
