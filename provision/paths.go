package provision

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// cleanAbs reports whether p is an absolute path in its shortest form:
// no "..", ".", empty or trailing elements, so it names the same file
// wherever it is joined under a root.
func cleanAbs(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

// inputName is a flake input name fleet joins into a path.
var inputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// underRoot is the path of the host's absolute path p on the installer,
// under root. It refuses what would resolve outside root.
func underRoot(root, p string) (string, error) {
	if !cleanAbs(p) || p == "/" {
		return "", fmt.Errorf("%q is not a clean absolute path under the new root", p)
	}
	full := path.Join(root, p)
	if !strings.HasPrefix(full, strings.TrimSuffix(root, "/")+"/") {
		return "", fmt.Errorf("%q resolves outside the new root %s", p, root)
	}
	return full, nil
}
