package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

func target(s *sshtest.Server) remote.Target {
	return remote.Target{User: s.User, Host: s.Host, Port: s.Port}
}

// dialPinned connects with an identity file and a pinned host key.
func dialPinned(t *testing.T, s *sshtest.Server, k sshtest.Key) *remote.Client {
	t.Helper()
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAgentAuth(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "agent-key")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	a := sshtest.StartAgent(t, k)
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{KnownHosts: []string{s.WriteKnownHosts(t)}},
		Auth:    remote.Auth{AgentSocket: a.Socket},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := remote.Output(context.Background(), c, "whoami")
	if err != nil || strings.TrimSpace(string(out)) != s.User {
		t.Fatalf("whoami = %q, %v", out, err)
	}
	if !strings.Contains(s.Log(), "Accepted publickey for "+s.User) || !strings.Contains(s.Log(), k.Fingerprint()) {
		t.Fatalf("sshd did not accept the agent's key:\n%s", s.Log())
	}
}

func TestIdentityFileAuthRSA(t *testing.T) {
	k := sshtest.NewKey(t, "rsa", "", "rsa-key")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	good := sshtest.NewKey(t, "ed25519", "", "good")
	bad := sshtest.NewKey(t, "ed25519", "", "bad")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{good.Line}})
	_, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{bad.Path}, AgentSocket: "none"},
	})
	if !errors.Is(err, remote.ErrConnection) || !strings.Contains(err.Error(), "refused every key offered (1)") {
		t.Fatalf("got %v", err)
	}
}

func TestPassphraseKeyWithoutTerminal(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "correct horse", "locked")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	_, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if !errors.Is(err, remote.ErrNoTerminal) {
		t.Fatalf("got %v, want ErrNoTerminal", err)
	}
	want := "identity file " + k.Path + " is passphrase-protected: no terminal to ask for the passphrase\nhint: add it to ssh-agent (ssh-add " + k.Path + ") or run fleet from a terminal"
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
}

func TestPassphraseAskedOnceAndOnlyWhenNeeded(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "correct horse", "locked")
	other := sshtest.NewKey(t, "ed25519", "pw2", "not-authorized")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	var asked atomic.Int32
	var askedFor []string
	opts := remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth: remote.Auth{IdentityFiles: []string{other.Path, k.Path}, AgentSocket: "none",
			Passphrase: func(file string) ([]byte, error) {
				asked.Add(1)
				askedFor = append(askedFor, file)
				return []byte("correct horse"), nil
			}},
	}
	for i := 0; i < 2; i++ {
		c, err := remote.Dial(context.Background(), target(s), opts)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Close()
	}
	// The unauthorized key is never unlocked: the server refused it first.
	if asked.Load() != 1 || askedFor[0] != k.Path {
		t.Fatalf("asked %d times for %v, want once for %s", asked.Load(), askedFor, k.Path)
	}
}

func TestExitStatusAndStderr(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	ctx := context.Background()
	_, err := c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "echo one >&2; echo two >&2; exit 7"}})
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 || !slices.Equal(ee.Stderr, []string{"one", "two"}) {
		t.Fatalf("got %#v", err)
	}
	if err.Error() != `sh -c 'echo one >&2; echo two >&2; exit 7': exit status 7: one; two` {
		t.Fatalf("error text %q", err)
	}
	// Arguments are never re-split or expanded by the remote shell.
	res, err := c.Run(ctx, remote.Cmd{Args: []string{"printf", "%s|", "a b", "$HOME", "it's", ""}})
	if err != nil || string(res.Stdout) != "a b|$HOME|it's||" {
		t.Fatalf("quoting: %q %v", res.Stdout, err)
	}
	// Stdin and env reach the command.
	res, err = c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `cat; echo "$FLEET_X"`}, Stdin: strings.NewReader("in\n"), Env: []string{"FLEET_X=a b"}})
	if err != nil || string(res.Stdout) != "in\na b\n" {
		t.Fatalf("stdin/env: %q %v", res.Stdout, err)
	}
	if c.Sessions() != 3 || s.AcceptedConnections() != 1 {
		t.Fatalf("sessions %d over %d connections, want 3 over 1", c.Sessions(), s.AcceptedConnections())
	}
}

func TestCancelStopsRemoteCommand(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 300"}})
		done <- err
	}()
	var pid int
	for i := 0; i < 500 && pid == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("remote command did not start")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after cancel\n%s", s.Log())
	}
	for i := 0; i < 300; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("remote process %d still running after cancel", pid)
}

func TestHostKeyPinMismatch(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	wrong := "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: wrong},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "pinned "+wrong+", host presented "+s.Fingerprint()) {
		t.Fatalf("error does not name both fingerprints: %v", err)
	}
	if strings.Contains(s.Log(), "Accepted publickey") {
		t.Fatal("authenticated to a host whose key did not match")
	}
}

func TestKnownHostsUnknownThenAcceptNew(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte("otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"), 0o600)
	opts := remote.Options{
		HostKey: remote.HostKeyPolicy{KnownHosts: []string{kh}},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	}
	_, err := remote.Dial(context.Background(), target(s), opts)
	if !errors.Is(err, remote.ErrUnknownHost) || !strings.Contains(err.Error(), "--accept-new") || !strings.Contains(err.Error(), s.Fingerprint()) {
		t.Fatalf("got %v", err)
	}
	opts.HostKey.AcceptNew = true
	c, err := remote.Dial(context.Background(), target(s), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if c.RecordedIn() != kh {
		t.Fatalf("recorded in %q", c.RecordedIn())
	}
	b, _ := os.ReadFile(kh)
	if !strings.Contains(string(b), s.KnownHostsLine()) {
		t.Fatalf("known_hosts lacks the new key:\n%s", b)
	}
	// Now strict checking passes without accept-new, and a changed key is refused even with it.
	opts.HostKey.AcceptNew = false
	c, err = remote.Dial(context.Background(), target(s), opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	s2 := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	os.WriteFile(kh, []byte(strings.ReplaceAll(s.KnownHostsLine(), strconv.Itoa(s.Port), strconv.Itoa(s2.Port))+"\n"), 0o600)
	opts.HostKey.AcceptNew = true
	_, err = remote.Dial(context.Background(), target(s2), opts)
	if !errors.Is(err, remote.ErrHostKeyMismatch) || !strings.Contains(err.Error(), s.Fingerprint()) || !strings.Contains(err.Error(), "host presented "+s2.Fingerprint()) {
		t.Fatalf("changed key: %v", err)
	}
}

func TestHashedKnownHosts(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	kh := s.WriteKnownHosts(t)
	if out, err := exec.Command("ssh-keygen", "-H", "-f", kh).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v %s", err, out)
	}
	b, _ := os.ReadFile(kh)
	if !strings.HasPrefix(string(b), "|1|") {
		t.Fatalf("not hashed: %s", b)
	}
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{KnownHosts: []string{kh}},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestUploadAtomic0600(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	dst := filepath.Join(dir, "secret")
	// A slow source lets us look at the directory mid-transfer.
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- remote.Upload(context.Background(), c, pr, 10, dst, remote.UploadOptions{Mode: 0o600, Owner: "root:root"})
	}()
	pw.Write([]byte("hunter"))
	var tmp string
	for i := 0; i < 500 && tmp == ""; i++ {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			tmp = filepath.Join(dir, e.Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if tmp == "" || !strings.HasPrefix(filepath.Base(tmp), ".fleet-upload.") {
		t.Fatalf("no temp file seen mid-transfer (%q)", tmp)
	}
	if st, err := os.Stat(tmp); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("temp file mode mid-transfer: %v %v", st.Mode(), err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatal("destination exists before the upload finished")
	}
	pw.Write([]byte("2!\n\n"))
	pw.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dst)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "hunter2!\n\n" {
		t.Fatalf("content %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestUploadCutShortLeavesNothing(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	dir := t.TempDir()
	dst := filepath.Join(dir, "f")
	os.WriteFile(dst, []byte("old"), 0o600)
	err := remote.Upload(context.Background(), c, strings.NewReader("short"), 100, dst, remote.UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "source ended after 5 of 100 bytes") {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatalf("destination changed: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	err = remote.Upload(context.Background(), c, strings.NewReader("x"), 1, filepath.Join(dir, "no/such/f"), remote.UploadOptions{})
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.StderrLine("directory "+dir+"/no/such does not exist") == "" {
		t.Fatalf("missing dir: %v", err)
	}
	// MkdirParents creates them 0700.
	if err := remote.Upload(context.Background(), c, strings.NewReader("x"), 1, filepath.Join(dir, "a/b/f"), remote.UploadOptions{MkdirParents: true}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "a/b")); st.Mode().Perm() != 0o700 {
		t.Fatalf("parent mode %v", st.Mode())
	}
}

func TestUpload200MB(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	const size = 200 << 20
	src := filepath.Join(t.TempDir(), "big")
	f, _ := os.Create(src)
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := h.Sum(nil)
	dst := filepath.Join(t.TempDir(), "big")
	start := time.Now()
	if err := remote.UploadFile(context.Background(), c, src, dst, remote.UploadOptions{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	t.Logf("200 MiB in %s", time.Since(start).Round(time.Millisecond))
	g, _ := os.Open(dst)
	defer g.Close()
	h2 := sha256.New()
	io.Copy(h2, g)
	if !bytes.Equal(h2.Sum(nil), want) {
		t.Fatal("sha256 differs")
	}
}

func TestUploadTree(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "hosts/nas"), 0o750)
	os.WriteFile(filepath.Join(src, "flake.nix"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(src, "hosts/nas/run.sh"), []byte("#!/bin/sh"), 0o755)
	os.WriteFile(filepath.Join(src, "untracked"), []byte("x"), 0o644)
	os.Symlink("flake.nix", filepath.Join(src, "link"))
	dst := filepath.Join(t.TempDir(), "etc/nixos")
	if err := remote.UploadTree(context.Background(), c, src, dst, remote.TreeOptions{UID: 1234, GID: 100}); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{"flake.nix": 0o644, "hosts/nas/run.sh": 0o755, "hosts": 0o750 | os.ModeDir} {
		st, err := os.Stat(filepath.Join(dst, p))
		if err != nil || st.Mode() != mode {
			t.Fatalf("%s: %v %v", p, st.Mode(), err)
		}
		var uid, gid int
		fmt.Sscan(statOwner(t, filepath.Join(dst, p)), &uid, &gid)
		if uid != 1234 || gid != 100 {
			t.Fatalf("%s owned by %d:%d", p, uid, gid)
		}
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "flake.nix" {
		t.Fatalf("symlink %q", l)
	}
	// Include picks files (git-tracked, say) and their directories only.
	dst2 := filepath.Join(t.TempDir(), "x")
	if err := remote.UploadTree(context.Background(), c, src, dst2, remote.TreeOptions{Include: []string{"flake.nix", "hosts/nas/run.sh"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst2, "untracked")); !os.IsNotExist(err) {
		t.Fatal("untracked file uploaded")
	}
	if _, err := os.Stat(filepath.Join(dst2, "hosts/nas/run.sh")); err != nil {
		t.Fatal(err)
	}
}

func statOwner(t *testing.T, p string) string {
	out, err := exec.Command("stat", "-c", "%u %g", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestProxyJumpAndAlias(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	jump := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	dest := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(jump.KnownHostsLine()+"\n"+dest.KnownHostsLine()+"\n"), 0o600)
	cfg := filepath.Join(dir, "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Host nas
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  ProxyJump bastion
Host bastion
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s
  UserKnownHostsFile %s
`, dest.Port, dest.User, k.Path, kh, jump.Port, jump.User, k.Path, kh)), 0o600)
	sc, err := remote.LoadSSHConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := remote.ParseTarget("nas")
	c, err := remote.Dial(context.Background(), tg, remote.Options{SSHConfig: sc, Auth: remote.Auth{AgentSocket: "none"}})
	if err != nil {
		t.Fatalf("dial via jump: %v", err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if jump.AcceptedConnections() != 1 || dest.AcceptedConnections() != 1 {
		t.Fatalf("jump %d dest %d logins", jump.AcceptedConnections(), dest.AcceptedConnections())
	}
	if !strings.Contains(jump.Log(), fmt.Sprintf("direct-tcpip")) && !strings.Contains(jump.Log(), fmt.Sprintf("127.0.0.1 port %d", dest.Port)) {
		t.Logf("jump log:\n%s", jump.Log())
	}
}

func TestWaitForSSH(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	opts := remote.Options{HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()}, Auth: remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"}}
	c, took, err := remote.WaitForSSH(context.Background(), target(s), opts, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if took <= 0 {
		t.Fatalf("took %v", took)
	}
	// A host that answers with another key is retried, then named.
	opts.HostKey.Pin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, _, err = remote.WaitForSSH(context.Background(), target(s), opts, 1500*time.Millisecond)
	if !errors.Is(err, remote.ErrWaitTimeout) || !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Fatalf("got %v", err)
	}
	// A port nobody listens on: the last error says so.
	port, _ := sshtest.FreePort()
	_, _, err = remote.WaitForSSH(context.Background(), remote.Target{User: "root", Host: "127.0.0.1", Port: port}, opts, time.Second)
	if !errors.Is(err, remote.ErrWaitTimeout) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
}

// TestKeepaliveDetectsDeadPeer freezes the server's side of the connection
// (a peer that vanished without closing): a running command fails with
// ErrConnection after the missed keepalives instead of hanging.
func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey:   remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:      remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
		KeepAlive: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sleep", "30"}})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if n := s.SignalConnections(syscall.SIGSTOP); n == 0 {
		t.Fatal("no connection process to freeze")
	}
	t.Cleanup(func() { s.SignalConnections(syscall.SIGCONT) })
	select {
	case err := <-done:
		if !errors.Is(err, remote.ErrConnection) {
			t.Fatalf("got %v, want ErrConnection", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a command on a dead connection hung past the keepalive limit")
	}
}
