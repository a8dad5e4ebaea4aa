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
	"github.com/fleetnix/fleet/test/sshtest"
)

func mustRun(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestVerifyScripts: secrets encrypted with the real age CLI to the host's
// key, in a git repo locked by the real nix; the "booted host" is the test
// sshd with /run/agenix laid out on ramfs as agenix's activation does.
func TestVerifyScripts(t *testing.T) {
	for _, bin := range []string{"age", "nix", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (.ci/run installs it)", bin)
		}
	}
	gitEnv := []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"}
	hostKey := sshtest.NewKey(t, "ed25519", "", "nas")
	other := sshtest.NewKey(t, "ed25519", "", "other")
	plain := map[string]string{"openai-key.age": "sk-test-openai-0123", "hosts/nas/smb.age": "username=nas\npassword=hunter2\n"}
	sec := t.TempDir()
	mustRun(t, sec, nil, "git", "init", "-q", "-b", "main")
	for f, p := range plain {
		os.MkdirAll(filepath.Join(sec, filepath.Dir(f)), 0o755)
		cmd := exec.Command("age", "-r", hostKey.Line, "-o", filepath.Join(sec, f))
		cmd.Stdin = strings.NewReader(p)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age: %v %s", err, out)
		}
	}
	mustRun(t, sec, nil, "git", "add", "-A")
	mustRun(t, sec, gitEnv, "git", "commit", "-qm", "secrets")
	fl := t.TempDir()
	os.WriteFile(filepath.Join(fl, "flake.nix"), []byte(`{ inputs.secrets = { url = "git+file://`+sec+`"; flake = false; }; outputs = { self, secrets }: { }; }`), 0o644)
	os.WriteFile(filepath.Join(fl, "nas.json"), []byte(`{"name": "nas", "system": "x86_64-linux",
 "identityPaths": ["`+hostKey.Path+`"],
 "secrets": {"openai-key": {"file": "openai-key.age"}, "smb-credentials": {"file": "hosts/nas/smb.age", "mode": "0440", "group": "nogroup"}}}`), 0o644)
	home := t.TempDir()
	mustRun(t, fl, []string{"HOME=" + home, "NIX_CONFIG=build-users-group ="}, "nix", "--extra-experimental-features", "nix-command flakes", "--store", filepath.Join(home, "store"), "flake", "lock")

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
		"HOSTKEY": hostKey.Path, "OTHERKEY": other.Path, "SECRETS": sec, "HOME": home,
		"PLAIN1": plain["openai-key.age"], "PLAIN2": "hunter2",
		"PORT": strconv.Itoa(s.Port), "KNOWN": s.WriteKnownHosts(t),
	})
}
