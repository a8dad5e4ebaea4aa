package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
)

// TestFactsScripts runs `fleet facts` end to end against a real sshd.
func TestFactsScripts(t *testing.T) { runScripts(t, "facts", sshdEnv(t)) }

// TestInstallScripts covers `fleet install`'s refusals and dry-run. The
// sshd's sessions find a nixos-install on their PATH (one that only says
// it is not there to run): preflight looks for it, and a dry run runs
// nothing.
func TestInstallScripts(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "nixos-install"), []byte("#!/bin/sh\necho 'a stand-in: dry runs only' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	runScripts(t, "install", sshdEnv(t, "SetEnv PATH="+bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
}

// sshdEnv starts a real sshd (with extra sshd_config lines) and returns
// what scripts need to reach it.
func sshdEnv(t *testing.T, config ...string) map[string]string {
	k := sshtest.NewKey(t, "ed25519", "", "operator")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}, Config: config})
	locked := sshtest.NewKey(t, "ed25519", "secret words", "locked")
	s.Authorize(t, locked.Line)
	kh := s.WriteKnownHosts(t)
	pub, err := os.ReadFile(s.HostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"TARGET":        s.Target(),
		"PORT":          strconv.Itoa(s.Port),
		"KEY":           k.Path,
		"LOCKED":        locked.Path,
		"FP":            s.Fingerprint(),
		"KNOWN":         kh,
		"HOSTLINE":      s.KnownHostsLine(),
		"HOSTPUB":       string(pub),
		"SSH_AUTH_SOCK": "",
	}
}
