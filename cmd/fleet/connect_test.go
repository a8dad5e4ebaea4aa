package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// isoTarget is a real sshd shaped like the NixOS ISO's login: root has no
// key, nixos has a password and passwordless sudo.
func isoTarget(t *testing.T) (*sshtest.Server, string) {
	t.Helper()
	testenv.Programs(t, "sudo", "openssl")
	s := sshtest.Start(t, sshtest.Options{PasswordAuth: true, Users: []sshtest.User{{Name: "nixos", Password: "console pw", Sudo: true}}})
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir()) // no ~/.ssh keys of the machine's own
	return s, s.WriteKnownHosts(t)
}

// TestEnvPassword: --env-password logs in as nixos with $SSHPASS, runs the
// facts as root through sudo, and takes SSHPASS out of the environment.
func TestEnvPassword(t *testing.T) {
	s, known := isoTarget(t)
	t.Setenv("SSHPASS", "console pw")
	code, stdout, stderr := runFleet(t, "facts", "--target", s.TargetAs("nixos"), "--known-hosts", known, "--env-password", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var f struct {
		Host  string `json:"host"`
		Disks []any  `json:"disks"`
	}
	if err := json.Unmarshal([]byte(stdout), &f); err != nil || len(f.Disks) == 0 {
		t.Fatalf("facts: %v\n%s", err, stdout)
	}
	if _, set := os.LookupEnv("SSHPASS"); set {
		t.Fatal("SSHPASS is still in fleet's environment")
	}
	if !strings.Contains(s.Log(), "Accepted password for nixos") {
		t.Fatalf("sshd:\n%s", s.Log())
	}
}

// TestEnvPasswordRefusals: a wrong $SSHPASS, no $SSHPASS, and a host that
// wants a password when there is no terminal to ask on.
func TestEnvPasswordRefusals(t *testing.T) {
	s, known := isoTarget(t)
	args := []string{"facts", "--target", s.TargetAs("nixos"), "--known-hosts", known}

	t.Setenv("SSHPASS", "wrong")
	code, _, stderr := runFleet(t, append(args, "--env-password")...)
	want := "error: ssh connection failed: password refused: nixos@" + s.Addr() + " refused the password from $SSHPASS\nhint: check the password set on the host (on the NixOS installer: the one given to passwd at its console)\n"
	if code != exitFail || stderr != want {
		t.Fatalf("wrong password: exit %d\n%s\nwant:\n%s", code, stderr, want)
	}

	os.Unsetenv("SSHPASS")
	code, _, stderr = runFleet(t, append(args, "--env-password")...)
	want = "error: --env-password: SSHPASS is not set\nhint: export SSHPASS with the host's login password first (read -rs SSHPASS; export SSHPASS)\n"
	if code != exitUsage || stderr != want {
		t.Fatalf("no SSHPASS: exit %d\n%s", code, stderr)
	}

	old := askPassword
	askPassword = func(user, host string) ([]byte, error) { return nil, remote.ErrNoTerminal } // as terminalPassword without one
	defer func() { askPassword = old }()
	code, _, stderr = runFleet(t, args...)
	if code != exitFail || !strings.Contains(stderr, "nixos@"+s.Addr()+" asks for a password and there is no terminal to ask on\nhint: put it in SSHPASS and pass --env-password") {
		t.Fatalf("no terminal: exit %d\n%s", code, stderr)
	}
	if n := strings.Count(s.Log(), "Failed password"); n != 1 {
		t.Fatalf("%d failed password attempts over three runs, want the one wrong password:\n%s", n, s.Log())
	}
}

// TestPasswordPrompt: without --env-password the password is asked (on
// the terminal; here a stand-in), once, only after the keys are refused.
func TestPasswordPrompt(t *testing.T) {
	s, known := isoTarget(t)
	var asked []string
	old := askPassword
	askPassword = func(user, host string) ([]byte, error) {
		asked = append(asked, user+"@"+host)
		return []byte("console pw"), nil
	}
	defer func() { askPassword = old }()
	code, _, stderr := runFleet(t, "facts", "--target", s.TargetAs("nixos"), "--known-hosts", known)
	if code != exitOK || len(asked) != 1 || asked[0] != "nixos@"+s.Addr() {
		t.Fatalf("exit %d, asked %v: %s", code, asked, stderr)
	}
}
