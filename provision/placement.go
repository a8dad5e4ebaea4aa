package provision

import (
	"fmt"
	"slices"
	"strings"
)

// placement is where an install puts its keys on the host.
type placement struct {
	dest string // the decryption identity's path (one of age.identityPaths)
	pub  string // its public half (authorized_keys form); "" for an age identity
	// hostKey is the host key fleet generates, or nil when the identity
	// is also the host key sshd presents at first boot.
	hostKey *HostKey
}

// placeIdentity decides where a decryption identity goes on the host,
// following how NixOS lays out sshd's host keys
// (services.openssh.hostKeys, RSA first by default) and how agenix reads
// its identities (age.identityPaths, by default those host keys' paths):
//   - an SSH key goes to the host-key path of its own type, so it is also
//     the host key: an ed25519 key never lands in the RSA-named file;
//   - where no host key of its type is an identity path, and for an age
//     identity (which sshd cannot read), it goes to an identity path that
//     is no host key's; with none, the install is refused with a hint;
//   - dest, when set (--identity-dest), must be an identity path, and a
//     host key's only for an SSH key of that key's type.
//
// When the identity is not a host key, fleet generates one, for a host
// key path other than the identity's (ed25519 first): a generated host
// key never overwrites the identity. keyType is the identity's host key
// type (rsa, ed25519, ...), "" for an age identity.
func placeIdentity(s *Spec, dest, keyType string) (placement, error) {
	what := "an age identity"
	if keyType != "" {
		what = "an " + keyType + " SSH key"
		if keyType == "rsa" {
			what = "an RSA SSH key"
		}
	}
	if dest != "" {
		if !slices.Contains(s.IdentityPaths, dest) {
			return placement{}, fmt.Errorf("--identity-dest %s is not one of host %s's age.identityPaths (%s): agenix would not read it at boot\nhint: add it to age.identityPaths, or leave --identity-dest out", dest, s.Name, strings.Join(s.IdentityPaths, ", "))
		}
		if hk, ok := s.hostKeyAt(dest); ok {
			switch {
			case keyType == "":
				return placement{}, fmt.Errorf("--identity-dest %s is one of sshd's host keys, and the identity is %s, which sshd cannot read\nhint: give the age identity an age.identityPaths entry of its own (not a host key's), or install an SSH key as the identity", dest, what)
			case hk.Type != "" && hk.Type != keyType:
				return placement{}, fmt.Errorf("--identity-dest %s is sshd's %s host key, and the identity is %s\nhint: use the %s host key's path (%s), or an identity of type %s", dest, hk.Type, what, keyType, strings.Join(s.hostKeysOfType(keyType), ", "), hk.Type)
			}
			return placement{dest: dest}, nil
		}
		return placement{dest: dest, hostKey: s.keyToGenerate(dest)}, nil
	}
	if keyType != "" {
		for _, p := range s.IdentityPaths {
			if hk, ok := s.hostKeyAt(p); ok && hk.Type == keyType {
				return placement{dest: p}, nil
			}
		}
	}
	for _, p := range s.IdentityPaths {
		if _, ok := s.hostKeyAt(p); !ok {
			return placement{dest: p, hostKey: s.keyToGenerate(p)}, nil
		}
	}
	if keyType == "" {
		return placement{}, fmt.Errorf("host %s has no place for %s: its age.identityPaths (%s) are all sshd host keys, which fleet would overwrite or sshd could not read\nhint: give the identity an entry of its own, e.g. age.identityPaths = [ \"/var/lib/agenix/host.key\" ] ++ (the host keys); or install an SSH key as the identity", s.Name, what, strings.Join(s.IdentityPaths, ", "))
	}
	return placement{}, fmt.Errorf("host %s has no place for %s: its age.identityPaths (%s) are sshd host keys of other types, and an identity must go to the host key of its own type\nhint: add an %s entry to services.openssh.hostKeys (agenix's default identityPaths then include it), or give the identity an age.identityPaths entry of its own; or install an identity of type %s", s.Name, what, strings.Join(s.IdentityPaths, ", "), keyType, strings.Join(s.identityKeyTypes(), " or "))
}

// keyToGenerate is the host key fleet makes when the identity at dest is
// none: an entry other than dest, ed25519 first, then ecdsa, then RSA (as
// NixOS's sshd would at boot), then one of unknown type (as ed25519).
func (s *Spec) keyToGenerate(dest string) *HostKey {
	for _, t := range []string{"ed25519", "ecdsa", "rsa", ""} {
		for _, k := range s.HostKeys {
			if k.Path != dest && k.Type == t {
				if t == "" {
					k.Type = "ed25519"
				}
				return &k
			}
		}
	}
	return nil
}

// hostKeysOfType are the paths of the host keys of type t.
func (s *Spec) hostKeysOfType(t string) []string {
	var out []string
	for _, k := range s.HostKeys {
		if k.Type == t {
			out = append(out, k.Path)
		}
	}
	return out
}

// identityKeyTypes are the types of the host keys that are identity
// paths: the SSH keys that can be the identity.
func (s *Spec) identityKeyTypes() []string {
	var out []string
	for _, p := range s.IdentityPaths {
		if hk, ok := s.hostKeyAt(p); ok && hk.Type != "" && !slices.Contains(out, hk.Type) {
			out = append(out, hk.Type)
		}
	}
	return out
}
