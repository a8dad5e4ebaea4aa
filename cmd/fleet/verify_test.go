package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestVerifyScripts: secrets encrypted with the real age CLI to the host's
// key, in a git repo locked by the real nix; the "booted host" is the test
// sshd with /run/agenix laid out on ramfs as agenix's activation does.
func TestVerifyScripts(t *testing.T) {
	nixtest.Require(t, "age", "nix", "git")
	hostKey := sshtest.NewKey(t, "ed25519", "", "nas")
	other := sshtest.NewKey(t, "ed25519", "", "other")
	plain := map[string]string{"openai-key.age": "sk-test-openai-0123", "hosts/nas/smb.age": "username=nas\npassword=hunter2\n"}
	sec := t.TempDir()
	nixtest.Git(t, sec, "init", "-q", "-b", "main")
	for f, p := range plain {
		os.MkdirAll(filepath.Join(sec, filepath.Dir(f)), 0o755)
		cmd := exec.Command("age", "-r", hostKey.Line, "-o", filepath.Join(sec, f))
		cmd.Stdin = strings.NewReader(p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age: %v %s", err, out)
		}
	}
	nixtest.Git(t, sec, "add", "-A")
	nixtest.Git(t, sec, "commit", "-qm", "secrets")
	fl := t.TempDir()
	os.WriteFile(filepath.Join(fl, "flake.nix"), []byte(`{ inputs.secrets = { url = "git+file://`+sec+`"; flake = false; }; outputs = { self, secrets }: { }; }`), 0o644)
	os.WriteFile(filepath.Join(fl, "nas.json"), []byte(`{"name": "nas", "system": "x86_64-linux",
 "identityPaths": ["`+hostKey.Path+`"],
 "secrets": {"openai-key": {"file": "openai-key.age"}, "smb-credentials": {"file": "hosts/nas/smb.age", "mode": "0440", "group": "nogroup"}}}`), 0o644)
	nixtest.Lock(t, fl)

	op := sshtest.NewKey(t, "ed25519", "", "operator")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{op.Line}})
	c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()}, Auth: remote.Auth{IdentityFiles: []string{op.Path}, AgentSocket: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	layout := `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d && mkdir /run/agenix.d/1
(umask 0377; printf %s "$1" > /run/agenix.d/1/openai-key; printf %s "$2" > /run/agenix.d/1/smb-credentials)
chmod 0440 /run/agenix.d/1/smb-credentials; chgrp nogroup /run/agenix.d/1/smb-credentials
ln -sfT /run/agenix.d/1 /run/agenix`
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", layout, "x", plain["openai-key.age"], plain["hosts/nas/smb.age"]}}); err != nil {
		t.Fatal(err)
	}
	runScripts(t, "verify", map[string]string{
		"TARGET": s.Target(), "OPKEY": op.Path, "FP": s.Fingerprint(), "FLAKE": fl,
		"HOSTKEY": hostKey.Path, "OTHERKEY": other.Path, "SECRETS": sec, "HOME": t.TempDir(),
		"PLAIN1": plain["openai-key.age"], "PLAIN2": "hunter2",
		"PORT": strconv.Itoa(s.Port), "KNOWN": s.WriteKnownHosts(t),
	})
}

// verifyAllFlake is a fleet of three hosts whose .age files are in the
// three places agenix users keep them: nas in the input named secrets,
// router in the flake itself, vault in an input named agenix-secrets
// (with agenix's secretsDir and secretsMountPoint moved, and a name).
const verifyAllFlake = `{
  inputs.secrets = { url = "git+file://SECRETS"; flake = false; };
  inputs.agenix-secrets = { url = "git+file://AGENIX"; flake = false; };
  outputs = { self, secrets, agenix-secrets }: let
    host = name: extra: { nixpkgs.hostPlatform.system = "x86_64-linux"; networking.hostName = name; } // extra;
  in {
    nixosConfigurations = {
      nas.config = host "nas" { age = {
        identityPaths = [ "NASID" ];
        secrets.openai-key.file = "${secrets}/openai-key.age";
        secrets.smb = { file = "${secrets}/hosts/nas/smb.age"; mode = "0440"; group = "nogroup"; };
      }; };
      router.config = host "router" { age = {
        identityPaths = [ "ROUTERID" ];
        secrets.wg = { file = ./secrets/wg.age; path = "/run/wireguard/wg0.conf"; };
      }; };
      vault.config = host "vault" { age = {
        identityPaths = [ "VAULTID" ];
        secretsDir = "/run/secrets"; secretsMountPoint = "/run/secrets.d";
        secrets.db = { file = "${agenix-secrets}/vault/db.age"; name = "db.env"; };
      }; };
    };
  };
}
`

// verifyAllLayouts lay out, in each host's sshd namespace, what agenix's
// activation makes of its declared secrets.
var verifyAllLayouts = map[string]string{
	"nas": `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d && mkdir /run/agenix.d/1
(umask 0377; printf %s "$1" > /run/agenix.d/1/openai-key; printf %s "$2" > /run/agenix.d/1/smb)
chmod 0440 /run/agenix.d/1/smb; chgrp nogroup /run/agenix.d/1/smb
ln -sfT /run/agenix.d/1 /run/agenix`,
	"router": `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d && mkdir /run/agenix.d/1
(umask 0377; printf %s "$1" > /run/agenix.d/1/wg)
ln -sfT /run/agenix.d/1 /run/agenix
mkdir -p /run/wireguard && ln -sfT /run/agenix/wg /run/wireguard/wg0.conf`,
	"vault": `set -e
mkdir -p /run/secrets.d && mount -t ramfs -o mode=0751 ramfs /run/secrets.d && mkdir /run/secrets.d/1
(umask 0377; printf %s "$1" > /run/secrets.d/1/db.env)
ln -sfT /run/secrets.d/1 /run/secrets`,
}

// TestVerifyAllScripts: `fleet verify --all` against three real sshds
// standing in for the booted hosts, each with agenix's layout on a ramfs
// in its own mount namespace. The flake is evaluated by the real nix
// (one eval for the fleet), the .age files were written by the real age
// CLI to the operator's age key and each host's key. nas and vault are
// ssh_config aliases, router is given by --target.
func TestVerifyAllScripts(t *testing.T) {
	nixtest.Require(t, "age", "nix", "git")
	opAge := filepath.Join(t.TempDir(), "operator.age")
	if out, err := exec.Command("age-keygen", "-o", opAge).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	pub, err := exec.Command("age-keygen", "-y", opAge).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	opRecipient := strings.TrimSpace(string(pub))
	encrypt := func(plain string, recipients ...string) string {
		args := []string{"--encrypt"}
		for _, r := range recipients {
			args = append(args, "-r", r)
		}
		cmd := exec.Command("age", args...)
		cmd.Stdin = strings.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("age: %v", err)
		}
		return string(out)
	}
	hostKeys := map[string]sshtest.Key{}
	for _, h := range []string{"nas", "router", "vault"} {
		hostKeys[h] = sshtest.NewKey(t, "ed25519", "", h)
	}
	plain := map[string][]string{"nas": {"sk-openai-0123", "username=nas\npassword=hunter2\n"}, "router": {"[Interface]\nPrivateKey = wg0123\n"}, "vault": {"DB_PASSWORD=vault0123"}}
	secretsRepo := nixtest.Repo(t, map[string]string{
		"openai-key.age":    encrypt(plain["nas"][0], opRecipient, hostKeys["nas"].Line),
		"hosts/nas/smb.age": encrypt(plain["nas"][1], opRecipient, hostKeys["nas"].Line)})
	agenixRepo := nixtest.Repo(t, map[string]string{"vault/db.age": encrypt(plain["vault"][0], opRecipient, hostKeys["vault"].Line)})
	fl := nixtest.Repo(t, map[string]string{
		"flake.nix": strings.NewReplacer("SECRETS", secretsRepo, "AGENIX", agenixRepo, "NASID", hostKeys["nas"].Path,
			"ROUTERID", hostKeys["router"].Path, "VAULTID", hostKeys["vault"].Path).Replace(verifyAllFlake),
		"secrets/wg.age": encrypt(plain["router"][0], opRecipient, hostKeys["router"].Line)})
	st := nixtest.NewStore(t)
	env := map[string]string{"HOME": t.TempDir(), "FLAKE": fl, "OPERATOR": opAge, "SECRETSREPO": secretsRepo, "AGENIXREPO": agenixRepo}
	for _, kv := range st.ClientEnv() {
		if k, v, _ := strings.Cut(kv, "="); k != "HOME" {
			env[k] = v
		}
	}
	st.Nix(fl, "flake", "lock", fl)
	nixtest.Git(t, fl, "add", "flake.lock")

	op := sshtest.NewKey(t, "ed25519", "", "operator")
	var sshConfig, known []string
	for _, h := range []string{"nas", "router", "vault"} {
		s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{op.Line}})
		c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
			HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()}, Auth: remote.Auth{IdentityFiles: []string{op.Path}, AgentSocket: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Run(context.Background(), remote.Cmd{Args: append([]string{"sh", "-c", verifyAllLayouts[h], "x"}, plain[h]...)}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		up := strings.ToUpper(h)
		env[up+"PORT"], env[up+"FP"], env[up+"KEY"] = strconv.Itoa(s.Port), s.Fingerprint(), hostKeys[h].Path
		if h != "router" {
			sshConfig = append(sshConfig, "Host "+h, "  HostName 127.0.0.1", "  Port "+strconv.Itoa(s.Port), "  User "+s.User, "  IdentityFile "+op.Path, "")
		}
		known = append(known, s.KnownHostsLine())
	}
	dir := t.TempDir()
	write := func(name string, lines []string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env["SSHCONFIG"] = write("ssh_config", sshConfig)
	env["KNOWN"] = write("known_hosts", known)
	// vault's entry with another key: a host whose key changed.
	stranger := sshtest.NewKey(t, "ed25519", "", "stranger")
	bad := append([]string{}, known...)
	bad[2] = "[127.0.0.1]:" + env["VAULTPORT"] + " " + strings.TrimSpace(stranger.Line)
	env["KNOWNBAD"] = write("known_hosts_bad", bad)
	env["OPKEY"], env["STRANGERFP"] = op.Path, stranger.Fingerprint()
	env["PLAIN1"], env["PLAIN2"] = plain["nas"][0], plain["vault"][0]
	runScripts(t, "verifyall", env)
}
