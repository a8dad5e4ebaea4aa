package sshtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestServerWithOpenSSHClient logs in with the real ssh client through the
// real agent, pinning the host key: the helper's pieces fit together.
func TestServerWithOpenSSHClient(t *testing.T) {
	k := NewKey(t, "ed25519", "", "client")
	s := Start(t, Options{AuthorizedKeys: []string{k.Line}})
	a := StartAgent(t, k)
	if !strings.Contains(a.List(t), k.Fingerprint()) {
		t.Fatalf("agent does not list the key: %s", a.List(t))
	}
	kh := s.WriteKnownHosts(t)
	cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-p", strconv.Itoa(s.Port), s.User+"@"+s.Host, "echo", "hello")
	cmd.Env = append(os.Environ(), a.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v: %s\n%s", err, out, s.Log())
	}
	if strings.TrimSpace(string(out)) != "hello" {
		t.Fatalf("got %q", out)
	}
	if n := s.AcceptedConnections(); n != 1 {
		t.Fatalf("accepted connections = %d, want 1", n)
	}
}
