package provision

import (
	"strings"
	"testing"
)

// TestPlaceIdentity: where each kind of identity goes for the host key
// layouts hosts have (NixOS's default: RSA then ed25519, with agenix's
// default identityPaths from them), and which host key fleet makes.
func TestPlaceIdentity(t *testing.T) {
	const (
		rsaPath = "/etc/ssh/ssh_host_rsa_key"
		edPath  = "/etc/ssh/ssh_host_ed25519_key"
		ageKey  = "/var/lib/agenix/host.key"
	)
	nixosDefault := func() *Spec { s := &Spec{Name: "nas"}; s.Normalize(); return s }
	withAge := func() *Spec {
		s := nixosDefault()
		s.IdentityPaths = append([]string{ageKey}, s.IdentityPaths...)
		return s
	}
	edOnly := func() *Spec {
		s := &Spec{Name: "nas", HostKeys: []HostKey{{edPath, "ed25519"}}}
		s.Normalize()
		return s
	}
	for _, c := range []struct {
		name      string
		spec      *Spec
		dest, typ string
		want      string // dest, then "+TYPE@PATH" of the generated host key
		err       string // the error's first line, when refused
	}{
		{name: "ed25519 key, NixOS default: its own host key path, not the RSA one", spec: nixosDefault(), typ: "ed25519", want: edPath},
		{name: "RSA key, NixOS default", spec: nixosDefault(), typ: "rsa", want: rsaPath},
		{name: "age identity with its own entry: an ed25519 host key made", spec: withAge(), want: ageKey + " +ed25519@" + edPath},
		{name: "ed25519 key with an age entry first: still the host key", spec: withAge(), typ: "ed25519", want: edPath},
		{name: "ecdsa key: no host key of its type, so the free entry", spec: withAge(), typ: "ecdsa", want: ageKey + " +ed25519@" + edPath},
		{name: "age identity, only host keys", spec: nixosDefault(),
			err: "host nas has no place for an age identity: its age.identityPaths (" + rsaPath + ", " + edPath + ") are all sshd host keys, which fleet would overwrite or sshd could not read"},
		{name: "RSA key on an ed25519-only host", spec: edOnly(), typ: "rsa",
			err: "host nas has no place for an RSA SSH key: its age.identityPaths (" + edPath + ") are sshd host keys of other types, and an identity must go to the host key of its own type"},
		{name: "explicit dest outside identityPaths", spec: nixosDefault(), typ: "ed25519", dest: "/root/k",
			err: "--identity-dest /root/k is not one of host nas's age.identityPaths (" + rsaPath + ", " + edPath + "): agenix would not read it at boot"},
		{name: "explicit dest: the host key of another type", spec: nixosDefault(), typ: "ed25519", dest: rsaPath,
			err: "--identity-dest " + rsaPath + " is sshd's rsa host key, and the identity is an ed25519 SSH key"},
		{name: "explicit dest: a host key, for an age identity", spec: withAge(), dest: edPath,
			err: "--identity-dest " + edPath + " is one of sshd's host keys, and the identity is an age identity, which sshd cannot read"},
		{name: "explicit dest: the free entry, for an SSH key", spec: withAge(), typ: "rsa", dest: ageKey, want: ageKey + " +ed25519@" + edPath},
	} {
		t.Run(c.name, func(t *testing.T) {
			pl, err := placeIdentity(c.spec, c.dest, c.typ)
			if c.err != "" {
				if err == nil || strings.Split(err.Error(), "\n")[0] != c.err || !strings.Contains(err.Error(), "\nhint: ") {
					t.Fatalf("got %v (%+v)\nwant %s\nhint: ...", err, pl, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := pl.dest
			if pl.hostKey != nil {
				got += " +" + pl.hostKey.Type + "@" + pl.hostKey.Path
				if pl.hostKey.Path == pl.dest {
					t.Fatal("the generated host key would overwrite the identity")
				}
			}
			if got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}
