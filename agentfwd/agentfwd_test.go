package agentfwd_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// remoteClient serves a over an in-memory pipe with x/crypto's agent
// server (what a forwarded channel runs) and returns the client side, as
// ssh-add on the host would see it.
func remoteClient(t *testing.T, a agent.Agent) agent.ExtendedAgent {
	t.Helper()
	c1, c2 := net.Pipe()
	go agent.ServeAgent(a, c2)
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return agent.NewClient(c1)
}

func fp(s ssh.Signer) string { return ssh.FingerprintSHA256(s.PublicKey()) }

func TestListsAndSignsOnlyAllowlisted(t *testing.T) {
	deploy, other := newSigner(t), newSigner(t)
	backing := agentfwd.FromSigners([]ssh.Signer{deploy, other}, []string{"deploy", "other"})
	a, err := agentfwd.New(backing, agentfwd.Config{Allow: []string{fp(deploy)}})
	if err != nil {
		t.Fatal(err)
	}
	rc := remoteClient(t, a.For("fetching the secrets"))
	keys, err := rc.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || ssh.FingerprintSHA256(keys[0]) != fp(deploy) || keys[0].Comment != "deploy" {
		t.Fatalf("listed %v, want only the deploy key", keys)
	}
	data := []byte("session id")
	sig, err := rc.Sign(deploy.PublicKey(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := deploy.PublicKey().Verify(data, sig); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if _, err := rc.Sign(other.PublicKey(), data); err == nil {
		t.Fatal("signed with a key not allowlisted")
	}
	log := a.Log()
	if len(log) != 2 || !log[0].Allowed || log[1].Allowed || log[1].Fingerprint != fp(other) || !strings.Contains(log[1].Reason, "key not allowed for forwarding") {
		t.Fatalf("recorded %+v", log)
	}
	if log[0].Session != "fetching the secrets" || log[0].Comment != "deploy" {
		t.Fatalf("recorded %+v", log[0])
	}
	want := "the installer used key " + fp(deploy) + " 1 time while fetching the secrets\n" +
		"the installer was refused key " + fp(other) + " 1 time while fetching the secrets"
	if got := a.Summary(); got != want {
		t.Fatalf("summary:\n%s\nwant:\n%s", got, want)
	}
}

func TestRefusesChanges(t *testing.T) {
	deploy := newSigner(t)
	a, err := agentfwd.New(agentfwd.FromSigners([]ssh.Signer{deploy}, nil), agentfwd.Config{Allow: []string{fp(deploy)}})
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, call := range map[string]func() error{
		"add":       func() error { return a.Add(agent.AddedKey{PrivateKey: priv}) },
		"remove":    func() error { return a.Remove(deploy.PublicKey()) },
		"removeall": a.RemoveAll,
		"lock":      func() error { return a.Lock([]byte("pw")) },
		"unlock":    func() error { return a.Unlock([]byte("pw")) },
	} {
		if err := call(); !errors.Is(err, agentfwd.ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", name, err)
		}
	}
	if _, err := a.Extension("session-bind@openssh.com", nil); !errors.Is(err, agent.ErrExtensionUnsupported) {
		t.Errorf("extension: %v", err)
	}
	// Over the wire, as the remote sees it.
	rc := remoteClient(t, a)
	if err := rc.RemoveAll(); err == nil {
		t.Error("remote remove-all succeeded")
	}
	if err := rc.Add(agent.AddedKey{PrivateKey: priv}); err == nil {
		t.Error("remote add succeeded")
	}
	if _, err := rc.Extension("query", nil); err == nil {
		t.Error("remote extension succeeded")
	}
	if keys, _ := rc.List(); len(keys) != 1 {
		t.Fatalf("keys after refused changes: %v", keys)
	}
}

// With no allowlist the agent serves nothing: forwarding is scoped by
// default (#14 item 2).
func TestNoAllowlistServesNoKey(t *testing.T) {
	k1, k2 := newSigner(t), newSigner(t)
	a, err := agentfwd.New(agentfwd.FromSigners([]ssh.Signer{k1, k2}, []string{"laptop", "work"}), agentfwd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rc := remoteClient(t, a.For("fetching the secrets"))
	if keys, err := rc.List(); err != nil || len(keys) != 0 {
		t.Fatalf("listed %v (%v), want no key", keys, err)
	}
	if _, err := a.For("x").Sign(k1.PublicKey(), []byte("x")); !errors.Is(err, agentfwd.ErrNotAllowed) {
		t.Fatalf("sign with no allowlist: %v, want ErrNotAllowed", err)
	}
}

func TestMaxSignaturesUnderConcurrency(t *testing.T) {
	k := newSigner(t)
	a, err := agentfwd.New(agentfwd.FromSigners([]ssh.Signer{k}, nil), agentfwd.Config{Allow: []string{fp(k)}, MaxSignatures: 3})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.For("s").Sign(k.PublicKey(), []byte("x")); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, agentfwd.ErrLimit) {
				t.Errorf("refusal %v, want ErrLimit", err)
			}
		}()
	}
	wg.Wait()
	if ok != 3 || a.Signatures() != 3 || len(a.Log()) != 20 {
		t.Fatalf("signed %d (recorded %d of %d requests), want exactly 3", ok, a.Signatures(), len(a.Log()))
	}
}

func TestExpiry(t *testing.T) {
	k := newSigner(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := now
	a, err := agentfwd.New(agentfwd.FromSigners([]ssh.Signer{k}, nil), agentfwd.Config{Allow: []string{fp(k)}, Expires: now.Add(time.Minute), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign(k.PublicKey(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(time.Minute)
	if _, err := a.Sign(k.PublicKey(), []byte("x")); !errors.Is(err, agentfwd.ErrLimit) || !strings.Contains(err.Error(), "expired at 2026-01-01T00:01:00Z") {
		t.Fatalf("sign at expiry: %v", err)
	}
}

func TestParseAllow(t *testing.T) {
	k1, k2 := newSigner(t), newSigner(t)
	line1 := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k1.PublicKey()))) + " deploy@secrets"
	line2 := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k2.PublicKey())))
	dir := t.TempDir()
	pub := filepath.Join(dir, "id.pub")
	os.WriteFile(pub, []byte("# keys\n"+line1+"\n"+line2+"\n"), 0o644)
	priv := filepath.Join(dir, "id")
	os.WriteFile(priv, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("hello\n"), 0o644)

	got, err := agentfwd.ParseAllow([]string{fp(k2), pub, line1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != fp(k2)+" "+fp(k1) {
		t.Fatalf("ParseAllow = %v, want [%s %s] (deduplicated, in order)", got, fp(k2), fp(k1))
	}
	for _, c := range []struct{ in, want string }{
		{"SHA256:short", "not a SHA256 fingerprint"},
		{"MD5:aa:bb", "MD5 fingerprints are not accepted"},
		{priv, "this is a private key"},
		{junk, "no public key in it"},
		{filepath.Join(dir, "missing.pub"), "no such file or directory"},
		{"", "empty value"},
	} {
		_, err := agentfwd.ParseAllow([]string{c.in})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "hint:") {
			t.Errorf("ParseAllow(%q) = %v, want %q with a hint", c.in, err, c.want)
		}
	}
}

func TestOptionsConfig(t *testing.T) {
	k := newSigner(t)
	c, err := agentfwd.Options{Keys: []string{fp(k)}, MaxSignatures: 2, TTL: time.Hour}.Config("git.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Allow) != 1 || c.Allow[0] != fp(k) || c.MaxSignatures != 2 || c.TTL != time.Hour || c.AllowFrom != "--forward-key" {
		t.Fatalf("config %+v", c)
	}
	if _, err := (agentfwd.Options{Keys: []string{fp(k)}, MaxSignatures: -1}).Config("", nil); err == nil {
		t.Fatal("negative limit accepted")
	}
}

// With no --forward-key the allowlist is the IdentityFile ssh_config gives
// the server (its .pub, or the public half an encrypted key keeps in the
// clear); with neither, Config refuses: nothing would be forwarded.
func TestOptionsConfigFromIdentityFiles(t *testing.T) {
	dir := t.TempDir()
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
	locked := sshtest.NewKey(t, "ed25519", "secret words", "locked")
	if err := os.Remove(locked.Path + ".pub"); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "id_rsa")
	c, err := agentfwd.Options{}.Config("git.example", []string{missing, deploy.Path, locked.Path})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Allow, " ") != deploy.Fingerprint()+" "+locked.Fingerprint() {
		t.Fatalf("allow %v, want the two keys' fingerprints", c.Allow)
	}
	if want := "IdentityFile " + deploy.Path + ", " + locked.Path + " for git.example in ssh_config"; c.AllowFrom != want {
		t.Fatalf("from %q, want %q", c.AllowFrom, want)
	}
	if c.MaxSignatures != agentfwd.DefaultMaxSignatures || c.TTL != agentfwd.DefaultTTL {
		t.Fatalf("limits %d, %s: want the defaults", c.MaxSignatures, c.TTL)
	}
	_, err = agentfwd.Options{}.Config("git.example", []string{missing})
	want := "no key allowed through the forwarded agent: neither --forward-key nor an IdentityFile for git.example in ssh_config names the key to forward\n" +
		"hint: pass --forward-key with the deploy key (KEY.pub or its SHA256 fingerprint), give git.example an IdentityFile in ~/.ssh/config, or fetch the secrets here with --secrets-fetch local"
	if !errors.Is(err, agentfwd.ErrNoAllowlist) || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// The TTL runs from when the agent is first forwarded, not from when it
// was made (an install's preflight may take a while before the fetch).
func TestTTLStartsWhenForwarded(t *testing.T) {
	k := newSigner(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := agentfwd.New(agentfwd.FromSigners([]ssh.Signer{k}, nil), agentfwd.Config{Allow: []string{fp(k)}, TTL: time.Minute, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(10 * time.Minute)
	v := a.For("fetching the secrets")
	clock = clock.Add(59 * time.Second)
	if _, err := v.Sign(k.PublicKey(), []byte("x")); err != nil {
		t.Fatalf("sign within the TTL: %v", err)
	}
	clock = clock.Add(time.Second)
	if _, err := v.Sign(k.PublicKey(), []byte("x")); !errors.Is(err, agentfwd.ErrLimit) || !strings.Contains(err.Error(), "expired at 2026-01-01T00:11:00Z") {
		t.Fatalf("sign at the TTL: %v", err)
	}
}

// Open refuses an agent that holds none of the allowed keys, saying where
// the allowlist came from, before anything is forwarded.
func TestOpenRefusesAgentWithoutAllowedKey(t *testing.T) {
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
	personal := sshtest.NewKey(t, "ed25519", "", "personal")
	ag := sshtest.StartAgent(t, personal)
	_, _, err := agentfwd.Open(ag.Socket, agentfwd.Config{Allow: []string{deploy.Fingerprint()}, AllowFrom: "--forward-key"})
	want := "your ssh-agent (SSH_AUTH_SOCK) holds none of the keys --forward-key allows: " + deploy.Fingerprint() + "\nhint: ssh-add the secrets repository's deploy key, or fetch the secrets here with --secrets-fetch local"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	a, conn, err := agentfwd.Open(ag.Socket, agentfwd.Config{Allow: []string{personal.Fingerprint()}, MaxSignatures: 4, TTL: 5 * time.Minute, AllowFrom: "--forward-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if want := "allowed key " + personal.Fingerprint() + " (from --forward-key), at most 4 signatures within 5m0s of forwarding"; a.Policy() != want {
		t.Fatalf("policy %q, want %q", a.Policy(), want)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, _, err := agentfwd.Open("", agentfwd.Config{}); err == nil || !strings.HasPrefix(err.Error(), "no ssh-agent to forward the deploy key from (SSH_AUTH_SOCK is not set)\nhint: ") {
		t.Fatalf("no agent: %v", err)
	}
}

func TestAddFlags(t *testing.T) {
	var o agentfwd.Options
	fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
	o.AddFlags(fs)
	if o.MaxSignatures != agentfwd.DefaultMaxSignatures || o.TTL != agentfwd.DefaultTTL {
		t.Fatalf("defaults %+v", o)
	}
	if err := fs.Parse([]string{"--forward-key", "SHA256:a", "--forward-key=b.pub", "--no-forward-agent", "--forward-max-signatures", "4", "--forward-ttl", "10m"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Keys, ",") != "SHA256:a,b.pub" || !o.Disabled || o.MaxSignatures != 4 || o.TTL != 10*time.Minute {
		t.Fatalf("parsed %+v", o)
	}
}
