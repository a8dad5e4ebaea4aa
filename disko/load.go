package disko

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// Load reads a spec file: JSON in either form, or a .nix file evaluated with
// nix-instantiate through r (a disko file is an attrset, or a function
// taking an attrset, with disko.devices).
func Load(ctx context.Context, r remote.Runner, file string) (*Spec, error) {
	if strings.HasSuffix(file, ".nix") {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		expr := fmt.Sprintf(`let f = import %s; v = if builtins.isFunction f then f { lib = (import <nixpkgs> {}).lib; } else f; in v.disko.devices`, nixPath(abs))
		res, err := r.Run(ctx, remote.Cmd{Args: []string{"nix-instantiate", "--eval", "--strict", "--json", "-E", expr}})
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w\nhint: export the layout as JSON with nix eval --json -f %s disko.devices", file, err, file)
		}
		return Parse(res.Stdout)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

var plainPathRE = regexp.MustCompile(`^[A-Za-z0-9._+/-]+$`)

// nixPath writes an absolute path as a Nix path literal (quoted when needed).
func nixPath(p string) string {
	if plainPathRE.MatchString(p) {
		return p
	}
	return `(/. + "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(p) + `")`
}
