package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
	// SecretsInput is the flake input that holds the .age files
	// (--secrets-input; SelfInput for the flake itself); "" to work it out
	// from the store paths the evaluation gives them.
	SecretsInput string
}

// Load resolves the spec: the SpecFile, else one nix eval through r; then
// where each .age file is (resolveSources).
func (h HostSource) Load(ctx context.Context, r remote.Runner) (*Spec, error) {
	var s *Spec
	var err error
	if h.SpecFile != "" {
		if s, err = LoadSpec(h.SpecFile); err != nil {
			return nil, err
		}
		if s.Name != h.Name {
			return nil, fmt.Errorf("%s describes host %q, not %q\nhint: pass the host the spec file is for", h.SpecFile, s.Name, h.Name)
		}
	} else if s, err = EvalSpec(ctx, r, h.FlakeDir, h.Name, h.evalOverrides(ctx, r)...); err != nil {
		return nil, err
	}
	if err := resolveSources(ctx, r, s, h.FlakeDir, h.SecretsInput); err != nil {
		return nil, err
	}
	return s, nil
}

// readLock reads the flake's flake.lock. A lock that cannot be read is
// an error only when something is read from it: the input the spec's
// secrets are in, or the secrets input an evaluation on the installer
// needs (needed).
func (h HostSource) readLock(spec *Spec, needed bool) (*flake.Lock, error) {
	lock, err := flake.ReadLock(filepath.Join(h.FlakeDir, "flake.lock"))
	if err != nil && !needed && !spec.needsInput() {
		return nil, nil
	}
	return lock, err
}

// evalOverrides make a local evaluation read the secrets input from
// SecretsDir at the locked rev (only paths into it matter to the spec, and
// fleet reads those relative to the repository). The input is
// --secrets-input, else the git input whose locked rev the clone has.
func (h HostSource) evalOverrides(ctx context.Context, r remote.Runner) []string {
	if h.SecretsDir == "" || h.SecretsInput == SelfInput {
		return nil
	}
	lock, err := flake.ReadLock(filepath.Join(h.FlakeDir, "flake.lock"))
	if err != nil {
		return nil // the evaluation says what is wrong with the lock
	}
	return cloneOverrides(lock, matchClones(ctx, r, lock, []string{h.SecretsDir}, h.SecretsInput))
}

// matchClones pairs local clones (--secrets-dir) with the git inputs
// they are clones of: the input whose locked rev a clone has (only the
// input only, when it is not ""). It returns input name -> clone.
func matchClones(ctx context.Context, r remote.Runner, lock *flake.Lock, dirs []string, only string) map[string]string {
	out := map[string]string{}
	ins, err := lock.Inputs()
	if err != nil {
		return out
	}
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			continue
		}
		for _, in := range ins {
			if in.Locked.Type != "git" || in.Locked.Rev == "" || out[in.Name] != "" || (only != "" && in.Name != only) {
				continue
			}
			if only == "" && !hasCommit(ctx, r, abs, in.Locked.Rev) {
				continue
			}
			out[in.Name] = abs
			break
		}
	}
	return out
}

// cloneOverrides are the nix flags that read each input from its clone
// at the locked rev.
func cloneOverrides(lock *flake.Lock, clones map[string]string) []string {
	var args []string
	for _, name := range slices.Sorted(maps.Keys(clones)) {
		in, err := lock.Input(name)
		if err != nil {
			continue
		}
		args = append(args, "--override-input", name, "git+file://"+clones[name]+"?rev="+in.Locked.Rev)
	}
	return args
}

// hasCommit reports whether the git repository dir has commit rev.
func hasCommit(ctx context.Context, r remote.Runner, dir, rev string) bool {
	_, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "cat-file", "-e", "--end-of-options", rev + "^{commit}"}})
	return err == nil
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
  age = get [ "age" ] { };
  secretsDir = toString (age.secretsDir or "/run/agenix");
  # agenix-rekey's module: recognised, and its files (rekeyed when the
  # system is built) left unevaluated.
  rekey = age ? rekey;
in {
  inherit name secretsDir;
  system = get [ "nixpkgs" "hostPlatform" "system" ] (get [ "nixpkgs" "system" ] "");
  hostName = get [ "networking" "hostName" ] name;
  disko = strip (get [ "disko" "devices" ] { });
  secrets = builtins.mapAttrs (n: s: let nm = s.name or n; in {
    name = nm; file = if rekey then "" else toString (s.file or ""); path = s.path or "${secretsDir}/${nm}";
    mode = s.mode or "0400"; owner = s.owner or "0"; group = s.group or "0"; symlink = s.symlink or true;
  }) (age.secrets or { });
  secretsMountPoint = toString (age.secretsMountPoint or "/run/agenix.d");
  agenixRekey = rekey;
  identityPaths = map toString (get [ "age" "identityPaths" ] [ ]);
  hostKeys = map (k: { path = toString k.path; type = k.type or ""; }) (get [ "services" "openssh" "hostKeys" ] [ ]);
  secretsInput = "";
}`

// EvalSpec evaluates the spec of host from the flake in flakeDir with one
// `nix eval` through r (this machine, or the installer for --eval-on
// installer). The flake's lock file is used as it is, never updated.
func EvalSpec(ctx context.Context, r remote.Runner, flakeDir, host string, nixArgs ...string) (*Spec, error) {
	attr := fmt.Sprintf("%s#nixosConfigurations.%s.config", flakeDir, strconv.Quote(host))
	args := append([]string{"nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json", "--no-write-lock-file"}, nixArgs...)
	args = append(args, attr, "--apply", "("+specExpr+") "+nixString(host))
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

// nixString is s as a Nix string literal: quotes, backslashes and
// interpolations escaped.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`)
	return `"` + r.Replace(s) + `"`
}

// fleetExpr applies specExpr to each named host of nixosConfigurations
// (every one when hosts is null). A host whose evaluation throws gets
// {fleetError}, so one broken host does not hide the others; a name the
// flake lacks gets {fleetMissing}.
const fleetExpr = `spec: hosts: cs: builtins.listToAttrs (map (n: {
  name = n;
  value = if !(cs ? ${n}) then { fleetMissing = true; } else
    let s = spec n cs.${n}.config; r = builtins.tryEval (builtins.deepSeq s s); in
    if r.success then r.value else { fleetError = "its evaluation failed (a throw or a failed assertion)"; };
}) (if hosts == null then builtins.attrNames cs else hosts))`

// EvalFleet evaluates the specs of the named hosts (every
// nixosConfiguration when hosts is empty) of the flake in flakeDir with
// one `nix eval` through r. A host whose evaluation throws is in failed
// with why, not in specs.
func EvalFleet(ctx context.Context, r remote.Runner, flakeDir string, hosts []string, nixArgs ...string) (specs map[string]*Spec, failed map[string]error, err error) {
	list := "null"
	if len(hosts) > 0 {
		q := make([]string, len(hosts))
		for i, h := range hosts {
			q[i] = nixString(h)
		}
		list = "[ " + strings.Join(q, " ") + " ]"
	}
	attr := flakeDir + "#nixosConfigurations"
	args := append([]string{"nix", "--extra-experimental-features", "nix-command flakes", "eval", "--json", "--no-write-lock-file"}, nixArgs...)
	args = append(args, attr, "--apply", "("+fleetExpr+") ("+specExpr+") "+list)
	res, err := r.Run(ctx, remote.Cmd{Args: args, Label: "nix eval " + attr, MaxStdout: 64 << 20})
	if err != nil {
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.StderrLine("does not provide attribute") != "" {
			return nil, nil, fmt.Errorf("flake %s has no nixosConfigurations\nhint: fleet verify --all checks the hosts of a flake's nixosConfigurations", flakeDir)
		}
		return nil, nil, fmt.Errorf("evaluate the fleet's host specs: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(res.Stdout, &raw); err != nil {
		return nil, nil, fmt.Errorf("evaluate the fleet's host specs: %w", err)
	}
	specs, failed = map[string]*Spec{}, map[string]error{}
	var missing []string
	for name, b := range raw {
		var mark struct {
			Missing bool   `json:"fleetMissing"`
			Error   string `json:"fleetError"`
		}
		if json.Unmarshal(b, &mark) == nil && (mark.Missing || mark.Error != "") {
			if mark.Missing {
				missing = append(missing, name)
			} else {
				failed[name] = errors.New(mark.Error)
			}
			continue
		}
		s, err := parseSpec(b, fmt.Sprintf("%s#nixosConfigurations.%s", flakeDir, strconv.Quote(name)))
		if err != nil {
			failed[name] = err
			continue
		}
		specs[name] = s
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, nil, fmt.Errorf("flake %s has no nixosConfigurations.%s\nhint: check the host names; without names, --all checks every host of the flake", flakeDir, strings.Join(missing, ", nixosConfigurations."))
	}
	return specs, failed, nil
}
