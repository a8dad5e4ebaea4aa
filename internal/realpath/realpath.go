// Package realpath answers where a path really leads once its symlinks
// are followed, for the checks that keep file access inside a directory
// (the rules' repository in nixeval, the rules' directory in secrets).
package realpath

import (
	"path/filepath"
	"strings"
)

// Resolve resolves the symlinks of the longest part of the absolute,
// clean path p that exists, and appends the rest as it is (a file that
// does not exist yet is where its directory really is).
func Resolve(p string) string {
	var rest []string
	for cur := p; ; cur = filepath.Dir(cur) {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r
		}
		if filepath.Dir(cur) == cur {
			return p
		}
		rest = append(rest, filepath.Base(cur))
	}
}

// Within reports whether p is root or below it (both clean and absolute).
func Within(p, root string) bool {
	if root == string(filepath.Separator) {
		return true
	}
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
