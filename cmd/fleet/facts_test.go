package main

import (
	"os"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
)

// TestFactsScripts runs `fleet facts` end to end against a real sshd.
func TestFactsScripts(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "operator")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	locked := sshtest.NewKey(t, "ed25519", "secret words", "locked")
	s.Authorize(t, locked.Line)
	kh := s.WriteKnownHosts(t)
	pub, err := os.ReadFile(s.HostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	runScripts(t, "facts", map[string]string{
		"TARGET":        s.Target(),
		"KEY":           k.Path,
		"LOCKED":        locked.Path,
		"FP":            s.Fingerprint(),
		"KNOWN":         kh,
		"HOSTLINE":      s.KnownHostsLine(),
		"HOSTPUB":       string(pub),
		"SSH_AUTH_SOCK": "",
	})
}
