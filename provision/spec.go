package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/flake"
)

// ErrBadSpec wraps every spec validation error.
var ErrBadSpec = errors.New("invalid host spec")

// ErrAgenixRekey: the host uses agenix-rekey, which fleet does not install.
var ErrAgenixRekey = errors.New("agenix-rekey is not supported")

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
//	      "file": "hosts/nas/smb.age",     // relative to its input (or the flake), or a /nix/store path
//	      "input": "secrets",              // where file is: a flake input, or "self" for the flake itself
//	      "path": "/run/agenix/smb-credentials",
//	      "mode": "0400", "owner": "root", "group": "root", "symlink": true
//	    }
//	  },
//	  "identityPaths": ["/etc/ssh/ssh_host_ed25519_key"],   // age.identityPaths
//	  "hostKeys": [                        // services.openssh.hostKeys
//	    { "path": "/etc/ssh/ssh_host_ed25519_key", "type": "ed25519" }
//	  ],
//	  "secretsInput": "secrets",           // the input holding the .age files ("self": the flake)
//	  "secretsDir": "/run/agenix",         // age.secretsDir
//	  "secretsMountPoint": "/run/agenix.d", // age.secretsMountPoint
//	  "initrdModules": ["virtio_blk"]      // boot.initrd.availableKernelModules ++ kernelModules
//	}
//
// Where each .age file is ([Secret.Input]) is worked out from the store
// path the evaluation gives it (see resolveSources); a spec file may say
// it instead.
type Spec struct {
	Name          string            `json:"name"`
	System        string            `json:"system"`
	HostName      string            `json:"hostName"`
	Disko         json.RawMessage   `json:"disko,omitempty"`
	Secrets       map[string]Secret `json:"secrets"`
	IdentityPaths []string          `json:"identityPaths"`
	HostKeys      []HostKey         `json:"hostKeys"`
	// SecretsInput is the flake input the .age files come from, SelfInput
	// when they are all in the flake itself. Once resolved, every secret
	// that is not in the flake is in this input.
	SecretsInput string `json:"secretsInput"`
	// SecretsDir and SecretsMountPoint are agenix's age.secretsDir (the
	// symlink to the current generation) and age.secretsMountPoint (the
	// ramfs holding the generations).
	SecretsDir        string `json:"secretsDir,omitempty"`
	SecretsMountPoint string `json:"secretsMountPoint,omitempty"`
	// AgenixRekey: the host imports agenix-rekey's module (age.rekey),
	// whose .age files are rekeyed for the host when it is built. Refused.
	AgenixRekey bool `json:"agenixRekey,omitempty"`
	// InitrdModules are the kernel modules the host's initrd has:
	// boot.initrd.availableKernelModules and boot.initrd.kernelModules.
	// The first-boot check compares them with the drivers of the root
	// device (none declared: not checked).
	InitrdModules []string `json:"initrdModules,omitempty"`
}

// Secret is one age.secrets entry.
type Secret struct {
	Name string `json:"name,omitempty"` // file name under the secrets dir; default: the attribute name
	File string `json:"file"`
	// Input is where File is: SelfInput (the flake's own files) or a
	// flake input's name; File is relative to it once resolved.
	Input   string `json:"input,omitempty"`
	Path    string `json:"path,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Owner   string `json:"owner,omitempty"`
	Group   string `json:"group,omitempty"`
	Symlink *bool  `json:"symlink,omitempty"`
}

// Clone returns a deep copy of s.
func (s *Spec) Clone() *Spec {
	c := *s
	c.Disko = slices.Clone(s.Disko)
	c.IdentityPaths = slices.Clone(s.IdentityPaths)
	c.HostKeys = slices.Clone(s.HostKeys)
	if s.Secrets != nil {
		c.Secrets = make(map[string]Secret, len(s.Secrets))
		for n, sec := range s.Secrets {
			if sec.Symlink != nil {
				v := *sec.Symlink
				sec.Symlink = &v
			}
			c.Secrets[n] = sec
		}
	}
	return &c
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

// kernelModule is what a kernel module's name may be.
var kernelModule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// DefaultSecretsInput is the flake input that holds the .age files when
// nothing says otherwise (a spec file's relative paths).
const DefaultSecretsInput = "secrets"

// SelfInput names the flake itself as where .age files are.
const SelfInput = "self"

// agenix's defaults for age.secretsDir and age.secretsMountPoint.
const (
	DefaultSecretsDir        = "/run/agenix"
	DefaultSecretsMountPoint = "/run/agenix.d"
)

// Normalize fills in agenix's defaults.
func (s *Spec) Normalize() {
	if s.HostName == "" {
		s.HostName = s.Name
	}
	if s.SecretsDir == "" {
		s.SecretsDir = DefaultSecretsDir
	}
	if s.SecretsMountPoint == "" {
		s.SecretsMountPoint = DefaultSecretsMountPoint
	}
	if len(s.HostKeys) == 0 {
		s.HostKeys = slices.Clone(defaultHostKeys)
	}
	if len(s.IdentityPaths) == 0 {
		s.IdentityPaths = agenixIdentityPaths(s.HostKeys)
	}
	for n, sec := range s.Secrets {
		if sec.Name == "" {
			sec.Name = n
		}
		if sec.Path == "" {
			sec.Path = s.SecretsDir + "/" + sec.Name
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
		if _, _, ok := flake.SplitStorePath(sec.File); !ok {
			sec.File = strings.TrimPrefix(sec.File, "./")
		}
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
	for i, m := range s.InitrdModules {
		if !kernelModule.MatchString(m) {
			return bad("initrdModules[%d] %q: want a kernel module name", i, m)
		}
	}
	if s.AgenixRekey {
		return fmt.Errorf("host %s uses agenix-rekey (age.rekey is set): %w\nhint: fleet installs plain agenix secrets (age.secrets.NAME.file); with agenix-rekey's storageMode = \"local\" the rekeyed files are plain agenix files: describe the host with --host-spec naming them (fleet spec --help)", s.Name, ErrAgenixRekey)
	}
	if s.SecretsInput != "" && !inputName.MatchString(s.SecretsInput) {
		return bad("secretsInput %q: want a flake input name (letters, digits, _ and -)", s.SecretsInput)
	}
	for _, f := range []struct{ name, path string }{{"secretsDir", s.SecretsDir}, {"secretsMountPoint", s.SecretsMountPoint}} {
		if !cleanAbs(f.path) || f.path == "/" {
			return bad("%s %q: want a clean absolute path", f.name, f.path)
		}
	}
	for _, n := range s.SecretNames() {
		sec := s.Secrets[n]
		file := sec.File
		if _, rel, ok := flake.SplitStorePath(file); ok {
			file = rel
			if rel == "" {
				file = "x" // a file copied into the store on its own
			}
		}
		if !filepath.IsLocal(file) || strings.ContainsRune(file, 0) {
			return bad("secrets.%s.file %q: want a path inside the flake or one of its inputs", n, sec.File)
		}
		if sec.Input != "" && !inputName.MatchString(sec.Input) {
			return bad("secrets.%s.input %q: want a flake input name, or self", n, sec.Input)
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
	for i, p := range s.IdentityPaths {
		if !cleanAbs(p) || p == "/" {
			return bad("identityPaths[%d] %q: want a clean absolute path (no . or .. elements)", i, p)
		}
	}
	return validateHostKeys(s.HostKeys)
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
