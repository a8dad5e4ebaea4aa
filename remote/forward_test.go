package remote_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// fwdRig is an installer stand-in (the test sshd, reached through a
// remote.Client), a git server holding the secrets repo, and the
// operator's ssh-agent holding the deploy key and another key.
type fwdRig struct {
	c       *remote.Client
	git     *sshtest.GitServer
	agent   *sshtest.Agent
	deploy  sshtest.Key // authorized on the git server
	other   sshtest.Key // in the operator's agent, not on the git server
	known   string      // known_hosts with the git server's key
	backing agent.ExtendedAgent
	login   sshtest.Key     // logs in to the installer stand-in
	srv     *sshtest.Server // the installer stand-in
}

func newFwdRig(t testing.TB) *fwdRig {
	t.Helper()
	sshtest.RequireRoot(t)
	r := &fwdRig{
		deploy: sshtest.NewKey(t, "ed25519", "", "deploy@secrets"),
		other:  sshtest.NewKey(t, "ed25519", "", "operator@laptop"),
	}
	r.agent = sshtest.StartAgent(t, r.deploy, r.other)
	// The test process's own agent must not leak into the remote sessions:
	// sshd is started with it in its environment.
	t.Setenv("SSH_AUTH_SOCK", r.agent.Socket)
	r.git = sshtest.StartGitServer(t, r.deploy)
	r.known = r.git.WriteKnownHosts(t)
	login := sshtest.NewKey(t, "ed25519", "", "login")
	r.login = login
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{login.Line}})
	c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{login.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, s.Log())
	}
	t.Cleanup(func() { c.Close() })
	r.c = c
	r.srv = s
	b, conn, err := agentfwd.DialAgent(r.agent.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.backing = b
	return r
}

// gitEnv makes ssh on the "remote" use only the forwarded agent: no
// config, no key file from /root/.ssh, the git server's key pinned.
func (r *fwdRig) gitEnv() []string {
	return []string{
		"GIT_SSH_COMMAND=ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile=" + r.known +
			" -o StrictHostKeyChecking=yes -o IdentitiesOnly=no -o IdentityFile=/dev/null",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
	}
}

func (r *fwdRig) clone(t testing.TB, hook remote.SessionHook) (string, *remote.Result, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	res, err := r.c.RunWith(context.Background(), remote.Cmd{
		Args: []string{"git", "clone", "-q", r.git.URL, dir},
		Env:  r.gitEnv(),
	}, hook)
	return dir, res, err
}

func sh(t *testing.T, c *remote.Client, script string, hook remote.SessionHook) (string, error) {
	t.Helper()
	res, err := c.RunWith(context.Background(), remote.Cmd{Args: []string{"sh", "-c", script}}, hook)
	out := ""
	if res != nil {
		out = string(res.Stdout) + string(res.Stderr)
	}
	return out, err
}

func TestForwardDeployKeyOnlyWhileFetching(t *testing.T) {
	r := newFwdRig(t)
	scoped, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := r.c.Forward(scoped.For("fetching the secrets"), "fetch secrets")

	// The remote lists only the allowlisted key.
	out, err := sh(t, r.c, "ssh-add -l", fwd.Hook())
	if err != nil {
		t.Fatalf("ssh-add -l through the forwarded agent: %v\n%s", err, out)
	}
	if !strings.Contains(out, r.deploy.Fingerprint()) || strings.Contains(out, r.other.Fingerprint()) {
		t.Fatalf("ssh-add -l on the remote should list only the deploy key %s, got:\n%s", r.deploy.Fingerprint(), out)
	}

	// The clone works through the forwarded agent.
	dir, res, err := r.clone(t, fwd.Hook())
	if err != nil {
		t.Fatalf("clone through the forwarded agent: %v", err)
	}
	_ = res
	head, err := os.ReadFile(filepath.Join(dir, r.git.File))
	if err != nil || !strings.Contains(string(head), "fleet test secrets") {
		t.Fatalf("clone has no %s: %v", r.git.File, err)
	}
	if n := scoped.Signatures(); n != 1 {
		t.Fatalf("signatures after one clone = %d, want 1: %+v", n, scoped.Log())
	}
	log := scoped.Log()
	if len(log) != 1 || !log[0].Allowed || log[0].Fingerprint != r.deploy.Fingerprint() || log[0].Session != "fetching the secrets" || log[0].Comment != "deploy@secrets" {
		t.Fatalf("recorded %+v", log)
	}

	// Changing the agent from the remote is refused, and nothing changed.
	extra := sshtest.NewKey(t, "ed25519", "", "smuggled")
	for _, c := range []struct{ script, want string }{
		{"ssh-add -D", "Failed to remove all identities"},
		{"ssh-add " + extra.Path, "Could not add identity"},
		{"ssh-add -d " + r.deploy.Path + ".pub", "Could not remove identity"},
		{"echo pw | ssh-add -x", "Failed to lock agent"},
	} {
		out, err := sh(t, r.c, c.script+" </dev/null", fwd.Hook())
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s on the remote: err=%v, want failure %q, output:\n%s", c.script, err, c.want, out)
		}
	}
	if got := r.agent.List(t); !strings.Contains(got, r.deploy.Fingerprint()) || !strings.Contains(got, r.other.Fingerprint()) || strings.Contains(got, extra.Fingerprint()) {
		t.Fatalf("operator's agent changed:\n%s", got)
	}

	// No private key reaches the remote: the session's agent directory
	// holds only the socket, and nothing in the clone is a key.
	out, err = sh(t, r.c, `d=$(dirname "$SSH_AUTH_SOCK"); ls -A "$d"; grep -rl "PRIVATE KEY" "$d" `+dir+` || echo no-private-key`, fwd.Hook())
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Fields(out); len(lines) != 2 || !strings.HasPrefix(lines[0], "agent.") || lines[1] != "no-private-key" {
		t.Fatalf("agent dir / private key scan on the remote:\n%s", out)
	}

	// A session that outlives the revocation: its socket stays but no
	// longer answers.
	pr, pw := io.Pipe()
	stdout := &watchBuffer{seen: make(chan struct{}), mark: "before-ok"}
	var long *remote.Result
	var longErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		long, longErr = r.c.RunWith(context.Background(), remote.Cmd{
			Args:   []string{"sh", "-c", `ssh-add -l >/dev/null && echo before-ok; read x; test -S "$SSH_AUTH_SOCK" && echo socket-still-there; ssh-add -l || echo after-failed; git clone -q ` + r.git.URL + " " + filepath.Join(t.TempDir(), "late") + " || echo clone-failed"},
			Env:    r.gitEnv(),
			Stdin:  pr,
			Stdout: stdout,
		}, fwd.Hook())
	}()
	select {
	case <-stdout.seen:
	case <-done:
		t.Fatalf("long session ended early: %v\n%s", longErr, stdout.String())
	case <-time.After(20 * time.Second):
		t.Fatal("long session: no answer from the forwarded agent within 20s")
	}
	// An agent connection held open across the revocation is cut: the
	// socket lives in /tmp, which the test sshd shares with this process.
	sockOut, err := sh(t, r.c, `echo "$SSH_AUTH_SOCK"`, fwd.Hook())
	if err != nil {
		t.Fatal(err)
	}
	held, err := net.Dial("unix", strings.TrimSpace(sockOut))
	if err != nil {
		t.Fatalf("connect to the forwarded socket %q: %v", sockOut, err)
	}
	defer held.Close()
	heldAgent := agent.NewClient(held)
	if keys, err := heldAgent.List(); err != nil || len(keys) != 1 {
		t.Fatalf("held connection before revoke: %v %v", keys, err)
	}
	fwd.Revoke()
	held.SetDeadline(time.Now().Add(10 * time.Second))
	if keys, err := heldAgent.List(); err == nil {
		t.Fatalf("held agent connection still answers after Revoke: %v", keys)
	}
	pw.Write([]byte("go\n"))
	pw.Close()
	<-done
	if longErr != nil {
		t.Fatalf("long session: %v", longErr)
	}
	lo := stdout.String()
	for _, want := range []string{"before-ok", "socket-still-there", "after-failed", "clone-failed"} {
		if !strings.Contains(lo, want) {
			t.Errorf("long session output lacks %q:\n%s\nstderr:\n%s", want, lo, long.Stderr)
		}
	}
	if !strings.Contains(string(long.Stderr), "Permission denied (publickey)") {
		t.Errorf("clone after revoke should fail for lack of a key, stderr:\n%s", long.Stderr)
	}

	// New sessions with the revoked hook are refused before they start.
	if _, _, err := r.clone(t, fwd.Hook()); !errors.Is(err, remote.ErrForwardRevoked) {
		t.Fatalf("clone with a revoked forwarding: %v, want ErrForwardRevoked", err)
	}
	if n := scoped.Signatures(); n != 1 {
		t.Fatalf("signatures at the end = %d, want 1: %+v", n, scoped.Log())
	}
	want := "the installer used key " + r.deploy.Fingerprint() + " 1 time while fetching the secrets"
	if got := scoped.Summary(); got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}

// watchBuffer collects output and closes seen once mark appears in it.
type watchBuffer struct {
	mu   sync.Mutex
	b    strings.Builder
	mark string
	seen chan struct{}
	once sync.Once
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.mark) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestForwardUnlistedDeployKeyIsNotUsable(t *testing.T) {
	r := newFwdRig(t)
	// Only the other key is allowed; the deploy key stays in the operator's
	// agent but the remote cannot see or use it.
	scoped, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.other.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := r.c.Forward(scoped.For("fetching the secrets"), "fetch secrets")
	defer fwd.Revoke()
	out, err := sh(t, r.c, "ssh-add -l", fwd.Hook())
	if err != nil || !strings.Contains(out, r.other.Fingerprint()) || strings.Contains(out, r.deploy.Fingerprint()) {
		t.Fatalf("ssh-add -l: %v\n%s", err, out)
	}
	_, _, err = r.clone(t, fwd.Hook())
	var xe *remote.ExitError
	if !errors.As(err, &xe) || xe.StderrLine("Permission denied (publickey)") == "" {
		t.Fatalf("clone without the deploy key: %v, want Permission denied (publickey)", err)
	}
	if n := len(scoped.Log()); n != 0 {
		t.Fatalf("the git server refused the offered key before any signature, yet %d were recorded: %+v", n, scoped.Log())
	}
}

func TestSessionWithoutHookHasNoAgentOrADeadOne(t *testing.T) {
	r := newFwdRig(t)
	scoped, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd := r.c.Forward(scoped, "fetch secrets")
	defer fwd.Revoke()
	// While a forwarding is active, a session run without its hook gets
	// no agent (and not the test process's own SSH_AUTH_SOCK either).
	out, err := sh(t, r.c, `echo "sock=${SSH_AUTH_SOCK-unset}"`, nil)
	if err != nil || strings.TrimSpace(out) != "sock=unset" {
		t.Fatalf("session without hook: %v %q, want no SSH_AUTH_SOCK", err, out)
	}
	if _, _, err := r.clone(t, nil); err == nil || !strings.Contains(err.Error(), "Permission denied (publickey)") {
		t.Fatalf("clone without forwarding: %v, want Permission denied (publickey)", err)
	}
	if n := len(scoped.Log()); n != 0 {
		t.Fatalf("signatures recorded without forwarding: %+v", scoped.Log())
	}

	// Once a session was forwarded, sshd exports its socket to every later
	// session on the connection; after Revoke it answers none of them.
	if out, err := sh(t, r.c, "ssh-add -l", fwd.Hook()); err != nil || !strings.Contains(out, r.deploy.Fingerprint()) {
		t.Fatalf("forwarded ssh-add -l: %v\n%s", err, out)
	}
	fwd.Revoke()
	out, err = sh(t, r.c, `test -S "$SSH_AUTH_SOCK" && echo socket; ssh-add -l`, nil)
	if err == nil || !strings.Contains(out, "socket") || strings.Contains(out, r.deploy.Fingerprint()) {
		t.Fatalf("ssh-add -l after revoke from a session without hook: %v\n%s", err, out)
	}

	// A second forwarding on the same connection (sshd takes one request
	// per connection) serves again, and only until it is revoked.
	again, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}})
	if err != nil {
		t.Fatal(err)
	}
	fwd2 := r.c.Forward(again.For("fetching the secrets again"), "fetch again")
	if _, _, err := r.clone(t, fwd2.Hook()); err != nil {
		t.Fatalf("clone through a second forwarding: %v", err)
	}
	fwd2.Revoke()
	if _, _, err := r.clone(t, nil); err == nil || !strings.Contains(err.Error(), "Permission denied (publickey)") {
		t.Fatalf("clone after the second revoke: %v, want Permission denied (publickey)", err)
	}
	if again.Signatures() != 1 || scoped.Signatures() != 0 {
		t.Fatalf("signatures: first %d (want 0), second %d (want 1)", scoped.Signatures(), again.Signatures())
	}
}

func TestForwardLimits(t *testing.T) {
	r := newFwdRig(t)
	// Backed by the identity file fleet loaded, not the agent.
	pem, err := os.ReadFile(r.deploy.Path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	files := agentfwd.FromSigners([]ssh.Signer{signer}, []string{r.deploy.Path})

	t.Run("max signatures", func(t *testing.T) {
		scoped, err := agentfwd.New(files, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}, MaxSignatures: 1})
		if err != nil {
			t.Fatal(err)
		}
		fwd := r.c.Forward(scoped.For("fetching the secrets"), "fetch")
		defer fwd.Revoke()
		if _, _, err := r.clone(t, fwd.Hook()); err != nil {
			t.Fatalf("first clone: %v", err)
		}
		_, _, err = r.clone(t, fwd.Hook())
		if err == nil || !strings.Contains(err.Error(), "Permission denied (publickey)") {
			t.Fatalf("second clone over the limit: %v, want Permission denied (publickey)", err)
		}
		log := scoped.Log()
		if len(log) < 2 || !log[0].Allowed || log[1].Allowed || !strings.Contains(log[1].Reason, "limit reached: 1 signatures made") {
			t.Fatalf("recorded %+v", log)
		}
		if scoped.Signatures() != 1 {
			t.Fatalf("signatures %d, want 1", scoped.Signatures())
		}
	})

	t.Run("expiry", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		scoped, err := agentfwd.New(files, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}, Expires: now.Add(time.Minute), Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		fwd := r.c.Forward(scoped.For("fetching the secrets"), "fetch")
		defer fwd.Revoke()
		if _, _, err := r.clone(t, fwd.Hook()); err != nil {
			t.Fatalf("clone before expiry: %v", err)
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		_, _, err = r.clone(t, fwd.Hook())
		if err == nil || !strings.Contains(err.Error(), "Permission denied (publickey)") {
			t.Fatalf("clone after expiry: %v, want Permission denied (publickey)", err)
		}
		log := scoped.Log()
		if len(log) < 2 || log[1].Allowed || !strings.Contains(log[1].Reason, "expired at 2026-01-01T12:01:00Z") {
			t.Fatalf("recorded %+v", log)
		}
	})
}

// BenchmarkForwardedClone measures a secrets fetch through fleet's scoped
// agent against what an operator would otherwise run: ssh -A with the
// whole agent forwarded, a new connection each time.
func BenchmarkForwardedClone(b *testing.B) {
	r := newFwdRig(b)
	b.Run("fleet-agentfwd", func(b *testing.B) {
		scoped, err := agentfwd.New(r.backing, agentfwd.Config{Allow: []string{r.deploy.Fingerprint()}})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			fwd := r.c.Forward(scoped.For("fetching the secrets"), "fetch")
			if _, _, err := r.clone(b, fwd.Hook()); err != nil {
				b.Fatal(err)
			}
			fwd.Revoke()
		}
	})
	b.Run("openssh-A", func(b *testing.B) {
		kh := r.srv.WriteKnownHosts(b)
		for i := 0; i < b.N; i++ {
			dir := filepath.Join(b.TempDir(), "secrets")
			remoteCmd := remote.ShellJoin(append([]string{"env"}, append(r.gitEnv(), "git", "clone", "-q", r.git.URL, dir)...))
			cmd := exec.Command("ssh", "-A", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh,
				"-o", "StrictHostKeyChecking=yes", "-i", r.login.Path, "-p", strconv.Itoa(r.srv.Port), r.srv.User+"@"+r.srv.Host, remoteCmd)
			cmd.Env = append(os.Environ(), r.agent.Env())
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ssh -A: %v\n%s", err, out)
			}
		}
	})
}
