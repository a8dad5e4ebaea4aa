package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// listen makes a real unix socket at p (its directories 0700), as sshd
// does for a forwarded agent.
func listen(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	t.Cleanup(func() { l.Close() })
}

// TestFetchScriptRemovesAgentSocket (#16 item 6): whatever happens to the
// fetch (here it fails: no such repository), the forwarded agent's socket
// is gone after it, where OpenSSH puts it: before 10.1 with its own
// directory, /tmp/ssh-XXXXXXXXXX/agent.PID; from 10.1 on,
// ~/.ssh/agent/s.HASH.sshd.RANDOM, with ~/.ssh/agent and ~/.ssh removed
// too unless they were there before the install (keep).
func TestFetchScriptRemovesAgentSocket(t *testing.T) {
	nixtest.Require(t, "git")
	for _, c := range []struct {
		name, sock, keep string
		gone, kept       []string // relative to the test's directory
	}{
		{name: "OpenSSH 9", sock: "tmp/ssh-XXXXfleet01/agent.4242", gone: []string{"tmp/ssh-XXXXfleet01"}, kept: []string{"tmp"}},
		{name: "OpenSSH 10.1, no ~/.ssh before", sock: "home/nixos/.ssh/agent/s.0123456789.sshd.abcdefghij", gone: []string{"home/nixos/.ssh"}, kept: []string{"home/nixos"}},
		{name: "OpenSSH 10.1, ~/.ssh before", sock: "root/.ssh/agent/s.0123456789.sshd.abcdefghij", keep: "ssh", gone: []string{"root/.ssh/agent"}, kept: []string{"root/.ssh"}},
		{name: "OpenSSH 10.1, ~/.ssh/agent before", sock: "root/.ssh/agent/s.0123456789.sshd.klmnopqrst", keep: "ssh agent", gone: []string{"root/.ssh/agent/s.0123456789.sshd.klmnopqrst"}, kept: []string{"root/.ssh/agent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := shortTempDir(t) // a socket's path is at most 107 bytes
			sock := filepath.Join(dir, c.sock)
			listen(t, sock)
			_, err := (&remote.Local{}).Run(context.Background(), remote.Cmd{
				Args: []string{"sh", "-c", fetchScript, "fleet-fetch", "file://" + dir + "/no-such-repo", strings.Repeat("a", 40), filepath.Join(dir, "mirror"), "/dev/null", c.keep},
				Env:  []string{"SSH_AUTH_SOCK=" + sock},
			})
			var ee *remote.ExitError
			if !errors.As(err, &ee) || ee.Code != 3 {
				t.Fatalf("want the fetch to fail (exit 3): %v", err)
			}
			for _, g := range c.gone {
				if _, err := os.Lstat(filepath.Join(dir, g)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s is still there", g)
				}
			}
			for _, k := range c.kept {
				if _, err := os.Lstat(filepath.Join(dir, k)); err != nil {
					t.Errorf("%s was removed: %v", k, err)
				}
			}
		})
	}
}

// TestInstallAsNixosWithPassword (#16 items 2 and 6): first contact with
// the NixOS ISO at the provision level. The installer's nixos user has a
// password and passwordless sudo, root has no key; fleet logs in with the
// password alone, every command runs as root through sudo -n, and the
// installer fetches the secrets as root through the agent forwarded to
// nixos (OpenSSH 9's /tmp/ssh-*/agent.PID). The socket is gone after the
// fetch, and the scan, looking for it under sudo, passes: nothing is left
// in nixos's home.
func TestInstallAsNixosWithPassword(t *testing.T) {
	testenv.Programs(t, "sudo", "openssl")
	f, deploy, gs := newGitFixture(t)
	const password = "correct horse battery staple"
	f.srv = sshtest.Start(t, sshtest.Options{PasswordAuth: true, Users: []sshtest.User{{Name: "nixos", Password: password, Sudo: true}}})
	op := sshtest.StartAgent(t, deploy)

	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity, PhaseScan)
	o.Target.User = "nixos"
	o.Dial.Auth = remote.Auth{AgentSocket: "none", Password: func(user, host string) ([]byte, error) { return []byte(password), nil }, PasswordFrom: "$SSHPASS"}
	o.Dial.HostKey.KnownHosts = []string{gs.WriteKnownHosts(t)}
	o.Forward = agentfwd.Options{Keys: []string{deploy.Fingerprint()}, Socket: op.Socket}
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v\n%s", err, f.srv.Log())
	}
	if want := "the installer used key " + deploy.Fingerprint() + " 1 time while fetching the secrets"; sum.Forwarding != want {
		t.Errorf("forwarding %q, want %q", sum.Forwarding, want)
	}
	if st, err := os.Stat(filepath.Join(f.root, "etc/ssh/ssh_host_ed25519_key")); err != nil || ownerUID(st) != 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("identity not root's 0600: %v", err)
	}
	home := f.srv.Home("nixos")
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Errorf("left in nixos's home: %v", ents)
	}
	if !strings.Contains(f.srv.Log(), "Accepted password for nixos") || sum.Connections != 1 {
		t.Errorf("want one connection, by password (%d)", sum.Connections)
	}
}

// TestScanFindsThisConnectionsAgentSocket (#16 item 6): the scan script
// run on this machine, as the installer runs it, finds this connection's
// forwarded agent socket where OpenSSH puts it: from 10.1 on the path the
// fetch saw in SSH_AUTH_SOCK (~/.ssh/agent/s.HASH.sshd.RANDOM), and
// before 10.1 /tmp/ssh-XXXXXXXXXX/agent.PID for a PID of one of the
// scan's ancestors (sshd's session process; sudo may stand between).
// Another connection's socket is not this install's.
func TestScanFindsThisConnectionsAgentSocket(t *testing.T) {
	dir := shortTempDir(t)
	newStyle := filepath.Join(dir, "home/nixos/.ssh/agent/s.0123456789.sshd.abcdefghij")
	listen(t, newStyle)
	oldDir, err := os.MkdirTemp("/tmp", "ssh-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(oldDir) })
	ours := filepath.Join(oldDir, fmt.Sprintf("agent.%d", os.Getpid())) // the scan shell's parent
	listen(t, ours)
	others := filepath.Join(oldDir, "agent.999999999")
	listen(t, others)
	scanned := filepath.Join(dir, "scanned")
	os.Mkdir(scanned, 0o755)
	res, err := (&remote.Local{}).Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", scanScript, "fleet-scan", filepath.Join(dir, "root"), "root", newStyle, scanned}})
	if err != nil {
		t.Fatal(err)
	}
	var sockets []string
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if s, ok := strings.CutPrefix(l, "S\t"); ok {
			sockets = append(sockets, s)
		}
	}
	want := []string{newStyle, ours}
	slices.Sort(want)
	if !slices.Equal(sockets, want) {
		t.Fatalf("sockets found %q\nwant %q", sockets, want)
	}
}

// TestLeftovers: what the scan holds against the installer. The login
// user's ~/.ssh and ~/.ssh/agent count only when sshd made them for this
// connection's socket (OpenSSH 10.1) and the baseline did not have them.
func TestLeftovers(t *testing.T) {
	base := scanBaseline{Keys: map[string]string{"/etc/ssh/ssh_host_ed25519_key": "a"}, Authorized: map[string]string{"/root/.ssh/authorized_keys": "b"}, Dirs: []string{"/home/nixos/.ssh"}}
	sock := "/home/nixos/.ssh/agent/s.0123456789.sshd.abcdefghij"
	sr := &scanResult{
		keys:       map[string]string{"/etc/ssh/ssh_host_ed25519_key": "a", "/tmp/x": "c"},
		authorized: map[string]string{"/root/.ssh/authorized_keys": "b2"},
		temps:      []string{"/tmp/.fleet-upload.ab12"},
		sockets:    []string{sock},
		dirs:       []string{"/home/nixos/.ssh", "/home/nixos/.ssh/agent"},
	}
	got := leftovers(base, sr, sock)
	want := []string{
		"/root/.ssh/authorized_keys changed",
		"directory sshd made for the forwarded agent left: /home/nixos/.ssh/agent",
		"fleet temporary file left: /tmp/.fleet-upload.ab12",
		"forwarded agent socket still open: " + sock,
		"private key material in /tmp/x",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	// OpenSSH before 10.1: the directories are not the socket's.
	if got := leftovers(base, &scanResult{authorized: base.Authorized, dirs: sr.dirs}, "/tmp/ssh-XXXX/agent.42"); len(got) != 0 {
		t.Fatalf("with the socket in /tmp: %q", got)
	}
}

func ownerUID(st os.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid)
	}
	return -1
}

// shortTempDir is a temporary directory with a short path, for sockets.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fleet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
