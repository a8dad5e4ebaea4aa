package provision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// HostSource names a host and where its [Spec] comes from: a JSON file,
// or one nix eval of the flake.
type HostSource struct {
	Name     string // the nixosConfigurations attribute
	FlakeDir string // the operator's flake directory
	SpecFile string // a JSON host spec (--host-spec) instead of evaluating the flake
	// SecretsDir is a local clone of the secrets repository: the local
	// decryption reads the .age files from it at the locked rev, and a
	// local evaluation reads the secrets input from it, so neither needs
	// the secrets repository's server.
	SecretsDir string
}

// Load resolves the spec: the SpecFile, else one nix eval through r.
func (h HostSource) Load(ctx context.Context, r remote.Runner) (*Spec, error) {
	if h.SpecFile != "" {
		s, err := LoadSpec(h.SpecFile)
		if err != nil {
			return nil, err
		}
		if s.Name != h.Name {
			return nil, fmt.Errorf("%s describes host %q, not %q\nhint: pass the host the spec file is for", h.SpecFile, s.Name, h.Name)
		}
		return s, nil
	}
	return EvalSpec(ctx, r, h.FlakeDir, h.Name, h.evalOverrides()...)
}

// readLock reads the flake's flake.lock. A lock that cannot be read is
// an error only when something is read from it: the spec's secrets, or
// the secrets input an evaluation on the installer needs (needed).
func (h HostSource) readLock(spec *Spec, needed bool) (*flake.Lock, error) {
	lock, err := flake.ReadLock(filepath.Join(h.FlakeDir, "flake.lock"))
	if err != nil && !needed && len(spec.Secrets) == 0 {
		return nil, nil
	}
	return lock, err
}

// evalOverrides make a local evaluation read the secrets input from
// SecretsDir at the locked rev (only paths into it matter to the spec, and
// fleet reads those relative to the repository).
func (h HostSource) evalOverrides() []string {
	if h.SecretsDir == "" {
		return nil
	}
	lock, err := flake.ReadLock(filepath.Join(h.FlakeDir, "flake.lock"))
	if err != nil {
		return nil // the evaluation says what is wrong with the lock
	}
	in, err := lock.Input(DefaultSecretsInput)
	if err != nil || in.Locked.Rev == "" {
		return nil
	}
	abs, err := filepath.Abs(h.SecretsDir)
	if err != nil {
		return nil
	}
	return []string{"--override-input", DefaultSecretsInput, "git+file://" + abs + "?rev=" + in.Locked.Rev}
}

// specExpr is applied to nixosConfigurations.<host>.config so that one nix
// eval returns exactly the spec (disko's internal "_" attributes, which
// hold functions, are stripped except _index).
const specExpr = `name: c:
let
  strip = v:
    if builtins.isAttrs v then
      builtins.listToAttrs (builtins.concatMap (k:
        if k != "_index" && builtins.substring 0 1 k == "_" then [ ]
        else [ { name = k; value = strip v.${k}; } ]) (builtins.attrNames v))
    else if builtins.isList v then map strip v
    else if builtins.isFunction v then null
    else v;
  get = path: default: let r = builtins.foldl' (acc: k: if acc != null && builtins.isAttrs acc && acc ? ${k} then acc.${k} else null) c path; in if r == null then default else r;
in {
  inherit name;
  system = get [ "nixpkgs" "hostPlatform" "system" ] (get [ "nixpkgs" "system" ] "");
  hostName = get [ "networking" "hostName" ] name;
  disko = strip (get [ "disko" "devices" ] { });
  secrets = builtins.mapAttrs (n: s: {
    name = s.name or n; file = toString (s.file or ""); path = s.path or "/run/agenix/${n}";
    mode = s.mode or "0400"; owner = s.owner or "0"; group = s.group or "0"; symlink = s.symlink or true;
  }) (get [ "age" "secrets" ] { });
  identityPaths = map toString (get [ "age" "identityPaths" ] [ ]);
  hostKeys = map (k: toString k.path) (get [ "services" "openssh" "hostKeys" ] [ ]);
  secretsInput = "secrets";
}`

// EvalSpec evaluates the spec of host from the flake in flakeDir with one
// `nix eval` through r (this machine, or the installer for --eval-on
// installer). The flake's lock file is used as it is, never updated.
func EvalSpec(ctx context.Context, r remote.Runner, flakeDir, host string, nixArgs ...string) (*Spec, error) {
	attr := fmt.Sprintf("%s#nixosConfigurations.%s.config", flakeDir, strconv.Quote(host))
	args := append([]string{"nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json", "--no-write-lock-file"}, nixArgs...)
	args = append(args, attr, "--apply", "("+specExpr+") "+strconv.Quote(host))
	res, err := r.Run(ctx, remote.Cmd{Args: args, Label: "nix eval " + attr})
	if err != nil {
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.StderrLine("does not provide attribute") != "" {
			return nil, fmt.Errorf("flake %s has no nixosConfigurations.%s\nhint: check the host name after '#'", flakeDir, host)
		}
		return nil, fmt.Errorf("evaluate the host spec: %w", err)
	}
	return parseSpec(res.Stdout, attr)
}
