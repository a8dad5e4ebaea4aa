package sshtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"
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

// TestUsersPrivateToServer: a user given in Options exists for the
// server's sessions (with its sudo rule) and nowhere else: the host's
// /etc is untouched.
func TestUsersPrivateToServer(t *testing.T) {
	testenv.Programs(t, "sudo", "openssl")
	k := NewKey(t, "ed25519", "", "client")
	before, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{Users: []User{{Name: "fleettest", Keys: []string{k.Line}, Sudo: true}}})
	cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "UserKnownHostsFile="+s.WriteKnownHosts(t), "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", k.Path, "-p", strconv.Itoa(s.Port), "fleettest@"+s.Host, "id -un; sudo -n id -un; pwd")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh: %v: %s\n%s", err, out, s.Log())
	}
	if want := "fleettest\nroot\n" + s.Home("fleettest") + "\n"; string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	after, _ := os.ReadFile("/etc/passwd")
	if string(after) != string(before) || strings.Contains(string(after), "fleettest") {
		t.Fatal("the host's /etc/passwd changed")
	}
}
