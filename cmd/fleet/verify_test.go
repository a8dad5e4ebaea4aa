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
