package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestVerifyAgainstAgenixLayout lays out /run/agenix the way agenix's
// activation does (ramfs at /run/agenix.d, generation 1, symlink), inside
// the test sshd's private mount namespace, and verifies it over SSH.
func TestVerifyAgainstAgenixLayout(t *testing.T) {
	c := bootedHost(t)
	etc := t.TempDir()
	layout := `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d
mkdir -p /run/agenix.d/1
(umask 0377; printf 'sk-openai' > /run/agenix.d/1/openai-key; printf 'user=smb' > /run/agenix.d/1/smb; printf 'wrong' > /run/agenix.d/1/bad)
chmod 0440 /run/agenix.d/1/smb; chgrp nogroup /run/agenix.d/1/smb
ln -sfT /run/agenix.d/1 /run/agenix
mkdir -p ` + etc + `/wg && ln -sfT /run/agenix/smb ` + etc + `/wg/smb.conf
printf 'on-disk' > ` + etc + `/ondisk; ln -sfT ` + etc + `/ondisk /run/agenix/ondisk-link
printf 'k' > ` + etc + `/key; chmod 0600 ` + etc + `/key
printf 'k' > ` + etc + `/loose; chmod 0644 ` + etc + `/loose
`
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", layout}}); err != nil {
		t.Fatal(err)
	}
	yes := true
	spec := &Spec{Name: "nas", System: "x86_64-linux", IdentityPaths: []string{etc + "/key", etc + "/loose", etc + "/absent"}, Secrets: map[string]Secret{
		"openai-key": {File: "openai-key.age"},
		"smb":        {File: "smb.age", Path: etc + "/wg/smb.conf", Mode: "0440", Owner: "root", Group: "nogroup", Symlink: &yes},
		"bad":        {File: "bad.age", Mode: "0600"},
		"gone":       {File: "gone.age"},
		"ondisk":     {File: "ondisk.age", Path: "/run/agenix/ondisk-link", Mode: "0644"},
	}}
	spec.Normalize()
	want := map[string]string{"openai-key": sum("sk-openai"), "smb": sum("user=smb"), "bad": sum("right"), "gone": sum("x"), "ondisk": sum("on-disk")}
	rep, err := Verify(context.Background(), c, spec, want)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("report OK despite broken secrets")
	}
	if rep.AgenixLink != "/run/agenix.d/1" {
		t.Fatalf("/run/agenix -> %q", rep.AgenixLink)
	}
	got := map[string][]string{}
	for _, sc := range rep.Secrets {
		got[sc.Name] = sc.Problems
		if sc.Name == "openai-key" && (!sc.OK || sc.FSType != "ramfs" || sc.Mode != "0400" || sc.Resolved != "/run/agenix.d/1/openai-key" || sc.Content != "match") {
			t.Errorf("openai-key: %+v", sc)
		}
		if sc.Name == "smb" && (!sc.OK || sc.Resolved != "/run/agenix.d/1/smb") {
			t.Errorf("smb through a custom-path symlink: %+v", sc)
		}
	}
	wantProblems := map[string][]string{
		"openai-key": {},
		"smb":        {},
		"bad":        {"mode 0400, want 0600", "content differs from the local decryption (sha256)"},
		"gone":       {"missing"},
		"ondisk":     {"resolves to " + etc + "/ondisk, outside /run/agenix.d/", "on " + fsType(t, c, etc) + ", not ramfs or tmpfs: the plaintext is on disk"},
	}
	if !reflect.DeepEqual(got, wantProblems) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, wantProblems)
	}
	idp := map[string][]string{}
	for _, ic := range rep.Identities {
		idp[ic.Path] = ic.Problems
	}
	if !reflect.DeepEqual(idp, map[string][]string{etc + "/key": {}, etc + "/loose": {"mode 0644, want 0600"}, etc + "/absent": {}}) {
		t.Fatalf("identities: %q", idp)
	}
}

// bootedHost is a test sshd (its own mount namespace, /run private)
// standing in for a booted host, and a connection to it.
func bootedHost(t *testing.T) *remote.Client {
	t.Helper()
	k := sshtest.NewKey(t, "ed25519", "", "op")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fsType(t *testing.T, c *remote.Client, dir string) string {
	out, err := remote.Output(context.Background(), c, "stat", "-f", "-c", "%T", dir)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestVerifyHonoursAgenixOptions lays out what agenix's activation makes
// of age.secretsDir = /run/secrets, age.secretsMountPoint =
// /run/secrets.d, a secret's name, and symlink = false, at generation 3
// with generation 2 left behind, and checks Verify finds each secret
// where agenix puts it, and nowhere else.
func TestVerifyHonoursAgenixOptions(t *testing.T) {
	c := bootedHost(t)
	etc := t.TempDir()
	layout := `set -e
mkdir -p /run/secrets.d && mount -t ramfs -o mode=0751 ramfs /run/secrets.d
mkdir -p /run/secrets.d/2 /run/secrets.d/3
(umask 0377; printf 'DB=1' > /run/secrets.d/3/db.env; printf 'old' > /run/secrets.d/2/stale; printf 'in-dir' > /run/secrets.d/3/plain)
ln -sfT /run/secrets.d/3 /run/secrets
ln -sfT /run/secrets.d/2/stale /run/secrets/stale
mkdir -p ` + etc + `/wireguard; (umask 0377; printf 'wg' > ` + etc + `/wireguard/wg0.conf)
(umask 0377; printf 'misnamed' > /run/secrets.d/3/api)
`
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", layout}}); err != nil {
		t.Fatal(err)
	}
	no := false
	spec := &Spec{Name: "vault", System: "x86_64-linux", SecretsDir: "/run/secrets", SecretsMountPoint: "/run/secrets.d", Secrets: map[string]Secret{
		"db":    {File: "db.age", Name: "db.env"},                                  // at /run/secrets/db.env
		"wg":    {File: "wg.age", Path: etc + "/wireguard/wg0.conf", Symlink: &no}, // written at its path, on disk, as agenix does
		"plain": {File: "plain.age", Path: "/run/secrets/plain", Symlink: &no},     // written through the secrets dir: on the ramfs
		"stale": {File: "stale.age"},                                               // a link into the previous generation
		"api":   {File: "api.age", Name: "api-key"},                                // the name not honoured: missing at /run/secrets/api-key
	}}
	spec.Normalize()
	want := map[string]string{"db": sum("DB=1"), "wg": sum("wg"), "plain": sum("in-dir"), "stale": sum("old"), "api": sum("misnamed")}
	rep, err := Verify(context.Background(), c, spec, want)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, sc := range rep.Secrets {
		got[sc.Name] = sc.Problems
	}
	wantProblems := map[string][]string{
		"db":    {},
		"wg":    {},
		"plain": {},
		"stale": {"resolves to /run/secrets.d/2/stale, not /run/secrets.d/3/stale in the current generation (/run/secrets -> /run/secrets.d/3)"},
		"api":   {"missing"},
	}
	if !reflect.DeepEqual(got, wantProblems) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, wantProblems)
	}
	if rep.OK || rep.SecretsDir != "/run/secrets" || rep.AgenixLink != "/run/secrets.d/3" {
		t.Fatalf("report: ok %v, dir %s -> %s", rep.OK, rep.SecretsDir, rep.AgenixLink)
	}
	// The defaults, /run/agenix, are not looked at: nothing is there.
	spec.SecretsDir, spec.SecretsMountPoint = "", ""
	spec.Secrets = map[string]Secret{"db": {File: "db.age", Name: "db.env"}}
	spec.Normalize()
	rep, err = Verify(context.Background(), c, spec, want)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Secrets[0].Path != "/run/agenix/db.env" || !reflect.DeepEqual(rep.Secrets[0].Problems, []string{"missing"}) {
		t.Fatalf("with agenix's defaults: %+v", rep.Secrets[0])
	}
}
