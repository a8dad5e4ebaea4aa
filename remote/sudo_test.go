package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

const isoPassword = "correct horse battery staple"

// isoServer is the NixOS ISO's login as far as SSH goes: root has no key,
// nixos has a password (set at the console) and passwordless sudo.
func isoServer(t *testing.T, o sshtest.Options) *sshtest.Server {
	t.Helper()
	testenv.Programs(t, "sudo", "openssl")
	o.Users = append(o.Users, sshtest.User{Name: "nixos", Password: isoPassword, Sudo: true})
	return sshtest.Start(t, o)
}

// givePassword is a PasswordFunc that answers pass and counts the asks.
func givePassword(pass string, asked *atomic.Int32) remote.PasswordFunc {
	return func(user, host string) ([]byte, error) {
		asked.Add(1)
		return []byte(pass), nil
	}
}

func dialNixos(t *testing.T, s *sshtest.Server, o remote.Options) *remote.Client {
	t.Helper()
	o.HostKey = remote.HostKeyPolicy{Pin: s.Fingerprint()}
	c, err := remote.Dial(context.Background(), remote.Target{User: "nixos", Host: s.Host, Port: s.Port}, o)
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPasswordThenSudo is first contact with the NixOS ISO: the operator's
// keys are refused, the password gets nixos in, and from then on every
// command (uploads too) runs as root through sudo -n, its arguments,
// environment and stdin intact. Nothing is left in nixos's home or root's
// authorized_keys.
func TestPasswordThenSudo(t *testing.T) {
	s := isoServer(t, sshtest.Options{PasswordAuth: true})
	other := sshtest.NewKey(t, "ed25519", "", "operator@laptop")
	a := sshtest.StartAgent(t, other)
	var asked atomic.Int32
	c := dialNixos(t, s, remote.Options{Auth: remote.Auth{AgentSocket: a.Socket, Password: givePassword(isoPassword, &asked), PasswordFrom: "$SSHPASS"}})
	if !strings.Contains(s.Log(), "Accepted password for nixos") || asked.Load() != 1 {
		t.Fatalf("asked %d times; sshd:\n%s", asked.Load(), s.Log())
	}
	if !c.Sudo() {
		t.Fatal("nixos's commands do not run through sudo")
	}
	ctx := context.Background()
	if out, err := remote.Output(ctx, c, "id", "-u"); err != nil || string(out) != "0\n" {
		t.Fatalf("id -u = %q, %v", out, err)
	}
	res, err := c.Run(ctx, remote.Cmd{Args: []string{"printf", "%s|", "a b", "$HOME", "it's", "", "-n", "`id`;x"}})
	if err != nil || string(res.Stdout) != "a b|$HOME|it's||-n|`id`;x|" {
		t.Fatalf("quoting: %q %v", res.Stdout, err)
	}
	res, err = c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `cat; echo "$FLEET_X" "$(id -un)"`}, Stdin: strings.NewReader("in\n"), Env: []string{"FLEET_X=a 'b'"}})
	if err != nil || string(res.Stdout) != "in\na 'b' root\n" {
		t.Fatalf("stdin/env: %q %v", res.Stdout, err)
	}
	// A forwarded agent's socket is passed only to the sessions that use one.
	if out, err := remote.Output(ctx, c, "sh", "-c", "echo ${SSH_AUTH_SOCK:-none}"); err != nil || string(out) != "none\n" {
		t.Fatalf("SSH_AUTH_SOCK without forwarding: %q %v", out, err)
	}

	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	dst := filepath.Join(dir, "key")
	if err := remote.Upload(ctx, c, strings.NewReader("secret\n"), 7, dst, remote.UploadOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o600 || ownerUID(st) != 0 {
		t.Fatalf("upload: %v uid %d %v", st.Mode(), ownerUID(st), err)
	}
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "a"), []byte("x"), 0o640)
	if err := remote.UploadTree(ctx, c, tree, filepath.Join(dir, "tree"), remote.TreeOptions{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "tree", "a")); err != nil || ownerUID(st) != 0 || st.Mode().Perm() != 0o640 {
		t.Fatalf("tree: %v", err)
	}

	// A command running as root is stopped by a cancel, through sudo.
	pidFile := filepath.Join(dir, "pid")
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(cctx, remote.Cmd{Args: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 300"}})
		done <- err
	}()
	pid := waitPid(t, pidFile)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	waitGone(t, pid)

	// So is one flooding stdout.
	if _, err := c.Run(ctx, remote.Cmd{Args: []string{"cat", "/dev/zero"}}); !errors.Is(err, remote.ErrOutputTooLarge) {
		t.Fatalf("flood: %v", err)
	}

	if ents, _ := os.ReadDir(s.Home("nixos")); len(ents) != 0 {
		t.Fatalf("left in nixos's home: %v", ents)
	}
	if b, _ := os.ReadFile(s.AuthorizedKeys); strings.TrimSpace(string(b)) != "" {
		t.Fatalf("root's authorized_keys gained %q", b)
	}
	if n := s.AcceptedConnections(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

// TestKeyboardInteractivePassword: a host that takes passwords only
// through keyboard-interactive (PAM) gets the same password.
func TestKeyboardInteractivePassword(t *testing.T) {
	s := isoServer(t, sshtest.Options{KbdInteractive: true})
	var asked atomic.Int32
	c := dialNixos(t, s, remote.Options{Auth: remote.Auth{AgentSocket: "none", Password: givePassword(isoPassword, &asked)}})
	if !strings.Contains(s.Log(), "Accepted keyboard-interactive/pam for nixos") || asked.Load() != 1 {
		t.Fatalf("asked %d times; sshd:\n%s", asked.Load(), s.Log())
	}
	if out, err := remote.Output(context.Background(), c, "id", "-un"); err != nil || string(out) != "root\n" {
		t.Fatalf("id -un = %q, %v", out, err)
	}
}

// TestWrongPassword: a wrong password fails once, with the error saying
// where it came from, and is never tried again: not by the other method,
// not by WaitForSSH.
func TestWrongPassword(t *testing.T) {
	s := isoServer(t, sshtest.Options{PasswordAuth: true, KbdInteractive: true})
	var asked atomic.Int32
	o := remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{AgentSocket: "none", Password: givePassword("hunter2", &asked), PasswordFrom: "$SSHPASS"},
	}
	_, _, err := remote.WaitForSSH(context.Background(), remote.Target{User: "nixos", Host: s.Host, Port: s.Port}, o, time.Minute)
	if !errors.Is(err, remote.ErrPasswordRefused) || !errors.Is(err, remote.ErrConnection) {
		t.Fatalf("got %v", err)
	}
	want := "ssh connection failed: password refused: nixos@" + s.Addr() + " refused the password from $SSHPASS\nhint: check the password set on the host (on the NixOS installer: the one given to passwd at its console)"
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
	if asked.Load() != 1 {
		t.Fatalf("password asked %d times, want 1", asked.Load())
	}
	if n := strings.Count(s.Log(), "Failed "); n != 1 {
		t.Fatalf("sshd saw %d failed attempts, want 1:\n%s", n, s.Log())
	}
}

// TestPasswordNeeded: keys refused, a host that takes passwords, and no
// way to get one: the error says how to give it.
func TestPasswordNeeded(t *testing.T) {
	s := isoServer(t, sshtest.Options{PasswordAuth: true})
	k := sshtest.NewKey(t, "ed25519", "", "not-authorized")
	_, err := remote.Dial(context.Background(), remote.Target{User: "nixos", Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{AgentSocket: "none", IdentityFiles: []string{k.Path}},
	})
	want := "ssh connection failed: the host wants a password: nixos@" + s.Addr() + " refused every key offered (1) and asks for a password\nhint: run fleet on a terminal to be asked for it, or put it in SSHPASS and pass --env-password"
	if !errors.Is(err, remote.ErrPasswordNeeded) || err.Error() != want {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(s.Log(), "Failed password") {
		t.Fatalf("a password was sent:\n%s", s.Log())
	}
}

// TestNoSudoRefused: a user whose sudo wants a password is refused when
// connecting, before any command runs; NoSudo runs as the user instead.
func TestNoSudoRefused(t *testing.T) {
	testenv.Programs(t, "sudo", "openssl")
	k := sshtest.NewKey(t, "ed25519", "", "op")
	s := sshtest.Start(t, sshtest.Options{Users: []sshtest.User{{Name: "alice", Keys: []string{k.Line}, SudoWithPassword: true}}})
	o := remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{AgentSocket: "none", IdentityFiles: []string{k.Path}},
	}
	tg := remote.Target{User: "alice", Host: s.Host, Port: s.Port}
	_, err := remote.Dial(context.Background(), tg, o)
	want := "no passwordless sudo: alice is not root on " + s.Addr() + ", and sudo -n true failed there: sudo: a password is required\nhint: give alice passwordless sudo on the host (the NixOS installer's nixos user has it) or log in as root; to run commands as alice instead (enough for fleet facts), pass --no-sudo"
	if !errors.Is(err, remote.ErrNoSudo) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	o.NoSudo = true
	c, err := remote.Dial(context.Background(), tg, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, err := remote.Output(context.Background(), c, "id", "-u"); err != nil || string(out) != strconv.Itoa(s.UID("alice"))+"\n" || c.Sudo() {
		t.Fatalf("id -u = %q, %v (sudo %v)", out, err, c.Sudo())
	}
}

// TestSudoForwardedAgent: a command under sudo still reaches the agent
// forwarded to the login user: root clones the secrets repository over
// SSH with the deploy key the installer never holds.
func TestSudoForwardedAgent(t *testing.T) {
	r := newFwdRig(t)
	s := isoServer(t, sshtest.Options{PasswordAuth: true})
	var asked atomic.Int32
	c := dialNixos(t, s, remote.Options{Auth: remote.Auth{AgentSocket: "none", Password: givePassword(isoPassword, &asked)}})
	scoped, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := c.Forward(scoped.For("fetching the secrets"), "fetch secrets")
	defer fwd.Revoke()
	dir := filepath.Join(t.TempDir(), "secrets")
	res, err := c.RunWith(context.Background(), remote.Cmd{
		Args: []string{"sh", "-c", `id -un >&2; exec git clone -q "$@"`, "clone", r.git.URL, dir},
		Env:  r.gitEnv(),
	}, fwd.Hook())
	if err != nil {
		t.Fatalf("clone under sudo: %v\n%s", err, s.Log())
	}
	if string(res.Stderr) != "root\n" {
		t.Fatalf("ran as %q", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		t.Fatal(err)
	}
	if fwd.Channels() == 0 {
		t.Fatal("the clone never used the forwarded agent")
	}
}

func waitPid(t *testing.T, file string) int {
	t.Helper()
	for i := 0; i < 500; i++ {
		b, _ := os.ReadFile(file)
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != 0 {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("remote command did not start")
	return 0
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("remote process %d still running", pid)
}

func ownerUID(st os.FileInfo) int {
	if st == nil {
		return -1
	}
	return int(st.Sys().(*syscall.Stat_t).Uid)
}

// TestPromptPausesHandshakeTimeout: the time the operator takes to type
// the password does not count against the handshake's time limit.
func TestPromptPausesHandshakeTimeout(t *testing.T) {
	s := isoServer(t, sshtest.Options{PasswordAuth: true})
	slow := func(user, host string) ([]byte, error) {
		time.Sleep(1500 * time.Millisecond) // an operator typing
		return []byte(isoPassword), nil
	}
	dialNixos(t, s, remote.Options{Timeout: 500 * time.Millisecond, Auth: remote.Auth{AgentSocket: "none", Password: slow}})
}
