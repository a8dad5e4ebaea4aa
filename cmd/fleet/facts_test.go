package main

import (
	"os"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
)

// TestFactsScripts runs `fleet facts` end to end against a real sshd.
func TestFactsScripts(t *testing.T) { runScripts(t, "facts", sshdEnv(t)) }

// TestInstallScripts covers `fleet install`'s refusals and dry-run.
func TestInstallScripts(t *testing.T) { runScripts(t, "install", sshdEnv(t)) }

// sshdEnv starts a real sshd and returns what scripts need to reach it.
func sshdEnv(t *testing.T) map[string]string {
	k := sshtest.NewKey(t, "ed25519", "", "operator")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	locked := sshtest.NewKey(t, "ed25519", "secret words", "locked")
	s.Authorize(t, locked.Line)
	kh := s.WriteKnownHosts(t)
	pub, err := os.ReadFile(s.HostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"TARGET":        s.Target(),
		"KEY":           k.Path,
		"LOCKED":        locked.Path,
		"FP":            s.Fingerprint(),
		"KNOWN":         kh,
		"HOSTLINE":      s.KnownHostsLine(),
		"HOSTPUB":       string(pub),
		"SSH_AUTH_SOCK": "",
	}
}
