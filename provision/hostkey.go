package provision

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// HostKey is one services.openssh.hostKeys entry: where sshd reads the
// key, and its type (rsa, ed25519, ecdsa).
type HostKey struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// defaultHostKeys are NixOS's services.openssh.hostKeys default: RSA
// first, then ed25519 (nixos/modules/services/networking/ssh/sshd.nix).
var defaultHostKeys = []HostKey{
	{Path: "/etc/ssh/ssh_host_rsa_key", Type: "rsa"},
	{Path: "/etc/ssh/ssh_host_ed25519_key", Type: "ed25519"},
}

// hostKeyTypes are the types sshd's host keys come in (ssh-keygen -t).
var hostKeyTypes = []string{"rsa", "ed25519", "ecdsa", "dsa"}

// hostKeyName is ssh-keygen -A's file name for a host key of a type.
var hostKeyName = regexp.MustCompile(`^ssh_host_([a-z0-9]+)_key$`)

// UnmarshalJSON reads an entry as {"path", "type"}, or as a bare path
// (the spec's earlier form), whose type its file name then says
// (ssh_host_TYPE_key; "" when it does not).
func (k *HostKey) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var p string
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
		*k = HostKey{Path: p, Type: typeFromName(p)}
		return nil
	}
	type plain HostKey
	var v plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*k = HostKey(v)
	return nil
}

func typeFromName(p string) string {
	if m := hostKeyName.FindStringSubmatch(path.Base(p)); m != nil && slices.Contains(hostKeyTypes, m[1]) {
		return m[1]
	}
	return ""
}

// sshKeyType is the host key type of an SSH public key type
// (ssh-ed25519 -> ed25519, ecdsa-sha2-nistp256 -> ecdsa).
func sshKeyType(t string) string {
	switch {
	case t == "ssh-rsa":
		return "rsa"
	case t == "ssh-ed25519":
		return "ed25519"
	case strings.HasPrefix(t, "ecdsa-sha2-"):
		return "ecdsa"
	case t == "ssh-dss":
		return "dsa"
	}
	return t
}

// HostKeyPaths are the host keys' paths, in order.
func (s *Spec) HostKeyPaths() []string {
	out := make([]string, len(s.HostKeys))
	for i, k := range s.HostKeys {
		out[i] = k.Path
	}
	return out
}

// hostKeyAt returns the host key sshd reads from p.
func (s *Spec) hostKeyAt(p string) (HostKey, bool) {
	i := slices.IndexFunc(s.HostKeys, func(k HostKey) bool { return k.Path == p })
	if i < 0 {
		return HostKey{}, false
	}
	return s.HostKeys[i], true
}

// agenixIdentityPaths is agenix's default age.identityPaths: the paths of
// the host keys of type rsa or ed25519, in their order (ryantm/agenix
// modules/age.nix, with services.openssh enabled).
func agenixIdentityPaths(keys []HostKey) []string {
	var out []string
	for _, k := range keys {
		if k.Type == "rsa" || k.Type == "ed25519" {
			out = append(out, k.Path)
		}
	}
	return out
}

// validateHostKeys checks each entry's path and type.
func validateHostKeys(keys []HostKey) error {
	for i, k := range keys {
		if !cleanAbs(k.Path) || k.Path == "/" {
			return fmt.Errorf("%w: hostKeys[%d].path %q: want a clean absolute path (no . or .. elements)", ErrBadSpec, i, k.Path)
		}
		if k.Type != "" && !slices.Contains(hostKeyTypes, k.Type) {
			return fmt.Errorf("%w: hostKeys[%d].type %q: want one of %s", ErrBadSpec, i, k.Type, strings.Join(hostKeyTypes, ", "))
		}
	}
	return nil
}
