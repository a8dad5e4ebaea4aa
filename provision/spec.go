package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
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

// hasDisko reports whether the spec declares a disko layout.
func (s *Spec) hasDisko() bool {
	d := string(bytes.TrimSpace(s.Disko))
	return d != "" && d != "null" && d != "{}"
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
	if !inputName.MatchString(s.SecretsInput) {
		return bad("secretsInput %q: want a flake input name (letters, digits, _ and -)", s.SecretsInput)
	}
	for _, n := range s.SecretNames() {
		sec := s.Secrets[n]
		if !filepath.IsLocal(sec.File) || strings.ContainsRune(sec.File, 0) {
			return bad("secrets.%s.file %q: want a path inside the secrets repository", n, sec.File)
		}
		if !cleanAbs(sec.Path) {
			return bad("secrets.%s.path %q: want a clean absolute path", n, sec.Path)
		}
		if m, err := strconv.ParseUint(sec.Mode, 8, 32); err != nil || m > 0o7777 {
			return bad("secrets.%s.mode %q: want an octal mode like 0400", n, sec.Mode)
		}
		if strings.ContainsAny(sec.Name, "/\x00") || sec.Name == "." || sec.Name == ".." {
			return bad("secrets.%s.name %q: want a plain file name", n, sec.Name)
		}
	}
	for _, f := range []struct {
		name  string
		paths []string
	}{{"identityPaths", s.IdentityPaths}, {"hostKeys", s.HostKeys}} {
		for i, p := range f.paths {
			if !cleanAbs(p) || p == "/" {
				return bad("%s[%d] %q: want a clean absolute path (no . or .. elements)", f.name, i, p)
			}
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
