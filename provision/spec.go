// Package provision is fleet's install pipeline: from a host spec and a
// verified connection to a live installer, through disks, staging, the
// identity, nixos-install, a scan of the installer, the reboot, and the
// first-boot check that every declared secret decrypted.
//
// A [Spec] says what fleet must know about a host. It comes from a JSON
// file (--host-spec, schema below) or from one `nix eval` of the flake's
// nixosConfigurations.<host>.config.
package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// ErrBadSpec wraps every spec validation error.
var ErrBadSpec = errors.New("invalid host spec")

// Spec is what fleet needs to know about one host. Its JSON form is the
// --host-spec schema (and what `fleet spec HOST --json` prints):
//
//	{
//	  "name": "nas",                       // the nixosConfigurations attribute
//	  "system": "x86_64-linux",
//	  "hostName": "nas",
//	  "disko": { "disk": { ... } },        // disko.devices, either form
//	  "secrets": {                         // age.secrets
//	    "smb-credentials": {
//	      "file": "hosts/nas/smb.age",     // relative to the secrets repo, or a /nix/store path into it
//	      "path": "/run/agenix/smb-credentials",
//	      "mode": "0400", "owner": "root", "group": "root", "symlink": true
//	    }
//	  },
//	  "identityPaths": ["/etc/ssh/ssh_host_ed25519_key"],   // age.identityPaths
//	  "hostKeys": ["/etc/ssh/ssh_host_ed25519_key"],        // services.openssh.hostKeys paths
//	  "secretsInput": "secrets"            // the flake input holding the .age files
//	}
type Spec struct {
	Name          string            `json:"name"`
	System        string            `json:"system"`
	HostName      string            `json:"hostName"`
	Disko         json.RawMessage   `json:"disko,omitempty"`
	Secrets       map[string]Secret `json:"secrets"`
	IdentityPaths []string          `json:"identityPaths"`
	HostKeys      []string          `json:"hostKeys"`
	SecretsInput  string            `json:"secretsInput"`
}

// Secret is one age.secrets entry.
type Secret struct {
	Name    string `json:"name,omitempty"` // file name under /run/agenix; default: the attribute name
	File    string `json:"file"`
	Path    string `json:"path,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Group   string `json:"group,omitempty"`
	Symlink *bool  `json:"symlink,omitempty"`
}

// SecretNames returns the secrets' attribute names, sorted.
func (s *Spec) SecretNames() []string {
	var out []string
	for n := range s.Secrets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// storePath matches a Nix store path prefix: /nix/store/<hash>-<name>/.
var storePath = regexp.MustCompile(`^/nix/store/[0-9a-df-np-sv-z]{32}-[^/]+/`)

// DefaultSecretsInput is the flake input that holds the .age files.
const DefaultSecretsInput = "secrets"

// Normalize fills in agenix's defaults and makes secret files relative to
// the secrets repository.
func (s *Spec) Normalize() {
	if s.HostName == "" {
		s.HostName = s.Name
	}
	if s.SecretsInput == "" {
		s.SecretsInput = DefaultSecretsInput
	}
	if len(s.HostKeys) == 0 {
		s.HostKeys = []string{"/etc/ssh/ssh_host_ed25519_key"}
	}
	if len(s.IdentityPaths) == 0 {
		s.IdentityPaths = append([]string{}, s.HostKeys...)
	}
	for n, sec := range s.Secrets {
		if sec.Name == "" {
			sec.Name = n
		}
		if sec.Path == "" {
			sec.Path = "/run/agenix/" + sec.Name
		}
		if sec.Mode == "" {
			sec.Mode = "0400"
		}
		if sec.Owner == "" {
			sec.Owner = "0"
		}
		if sec.Group == "" {
			sec.Group = "0"
		}
		if sec.Symlink == nil {
			t := true
			sec.Symlink = &t
		}
		sec.File = strings.TrimPrefix(storePath.ReplaceAllString(sec.File, ""), "./")
		s.Secrets[n] = sec
	}
}

// Validate checks the spec after Normalize; errors name the field.
func (s *Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return bad("name is empty")
	}
	switch s.System {
	case "x86_64-linux", "aarch64-linux", "i686-linux", "armv7l-linux", "riscv64-linux":
	case "":
		return bad("system is empty (want e.g. x86_64-linux or aarch64-linux)")
	default:
		return bad("system %q is not a Linux system fleet can install", s.System)
	}
	for _, n := range s.SecretNames() {
		sec := s.Secrets[n]
		if sec.File == "" || path.IsAbs(sec.File) || strings.HasPrefix(path.Clean(sec.File), "..") {
			return bad("secrets.%s.file %q: want a path inside the secrets repository", n, sec.File)
		}
		if !path.IsAbs(sec.Path) {
			return bad("secrets.%s.path %q: want an absolute path", n, sec.Path)
		}
		if m, err := strconv.ParseUint(sec.Mode, 8, 32); err != nil || m > 0o7777 {
			return bad("secrets.%s.mode %q: want an octal mode like 0400", n, sec.Mode)
		}
		if strings.ContainsAny(sec.Name, "/\x00") || sec.Name == "." || sec.Name == ".." {
			return bad("secrets.%s.name %q: want a plain file name", n, sec.Name)
		}
	}
	for _, p := range append(append([]string{}, s.IdentityPaths...), s.HostKeys...) {
		if !path.IsAbs(p) {
			return bad("identity or host key path %q: want an absolute path", p)
		}
	}
	return nil
}

// LoadSpec reads a --host-spec JSON file.
func LoadSpec(file string) (*Spec, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read host spec: %w", err)
	}
	return parseSpec(b, file)
}

func parseSpec(b []byte, from string) (*Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s: %w\nhint: see 'fleet spec --help' for the schema", ErrBadSpec, from, err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return &s, nil
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
