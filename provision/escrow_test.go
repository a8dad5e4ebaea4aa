package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// escrowFixture is the pipeline fixture with real secrets: a secrets
// repository whose secrets.nix gives each secret to the operator (an age
// identity) and the host, and whose hosts/nas/host-key.age holds the
// escrowed key, encrypted to the operator only.
type escrowFixture struct {
	*pipelineFixture
	operator string      // the operator's age identity file
	host     sshtest.Key // nas's decryption identity (its host key)
}

func newEscrowFixture(t *testing.T, escrowed func(host sshtest.Key) []byte) *escrowFixture {
	t.Helper()
	f := &escrowFixture{pipelineFixture: newPipelineFixture(t), host: sshtest.NewKey(t, "ed25519", "", "root@nas")}
	op, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	f.operator = filepath.Join(t.TempDir(), "operator.age")
	if err := os.WriteFile(f.operator, []byte(op.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opRec := op.Recipient().String()
	hostRec := strings.Join(strings.Fields(f.host.Line)[:2], " ")
	rules := fmt.Sprintf(`let operator = %q; nas = %q; in {
  "openai-key.age".publicKeys = [ operator nas ];
  "hosts/nas/smb.age".publicKeys = [ operator nas ];
  "hosts/nas/host-key.age".publicKeys = [ operator ];
}
`, opRec, hostRec)
	write := func(name string, b []byte) {
		p := filepath.Join(f.secretsDir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	enc := func(plain []byte, to ...string) []byte {
		ct, err := secrets.Encrypt(plain, to, false)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	write("secrets.nix", []byte(rules))
	write("openai-key.age", enc([]byte("sk-demo"), opRec, hostRec))
	write("hosts/nas/smb.age", enc([]byte("user=nas"), opRec, hostRec))
	write("hosts/nas/host-key.age", enc(escrowed(f.host), opRec))
	nixtest.Git(t, f.secretsDir, "add", "-A")
	nixtest.Git(t, f.secretsDir, "commit", "-qm", "escrow nas")
	nixtest.Nix(t, f.flakeDir, "flake", "lock", "--update-input", "secrets", f.flakeDir)
	if f.lock, err = flake.ReadLock(filepath.Join(f.flakeDir, "flake.lock")); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *escrowFixture) options(t *testing.T, phases ...string) Options {
	o := f.pipelineFixture.options(t, phases...)
	o.Identity, o.Decrypted = "", nil
	o.IdentityAge = "hosts/nas/host-key.age"
	o.OperatorIdentities = []string{f.operator}
	o.Host.SecretsDir = f.secretsDir
	return o
}

func hostKeyBytes(t *testing.T, k sshtest.Key) []byte {
	t.Helper()
	b, err := os.ReadFile(k.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPipelineEscrowedIdentity: --host-identity-age restores the host's
// key from its escrow, decrypted in memory with the operator's identity,
// and installs it: the new root holds the same bytes, and nothing on this
// machine held them in the meantime.
func TestPipelineEscrowedIdentity(t *testing.T) {
	f := newEscrowFixture(t, func(h sshtest.Key) []byte { return hostKeyBytes(t, h) })
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity)
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	want := hostKeyBytes(t, f.host)
	got, err := os.ReadFile(filepath.Join(f.root, "etc/ssh/ssh_host_ed25519_key"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed identity differs from the escrowed key (%v)", err)
	}
	if !strings.HasPrefix(sum.Identity, "hosts/nas/host-key.age (escrowed), ssh-ed25519 SHA256:") {
		t.Fatalf("summary identity %q", sum.Identity)
	}
	// The host key the reboot pins is the escrowed key's own.
	if pub, _ := os.ReadFile(filepath.Join(f.root, "etc/ssh/ssh_host_ed25519_key.pub")); !strings.HasPrefix(string(pub), strings.Join(strings.Fields(f.host.Line)[:2], " ")) {
		t.Fatalf("installed public key %q, want %q", pub, f.host.Line)
	}
	// No file under TMPDIR or /dev/shm holds the key (the rules' copy of
	// the secrets tree was ciphertext, and is gone). The file's first
	// lines are the same for every unencrypted ed25519 key; its middle is
	// the private section, this key's alone.
	mid := want[len(want)/2-40 : len(want)/2+40]
	for _, dir := range []string{tmp, "/dev/shm"} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, _ := os.ReadFile(p); bytes.Contains(b, mid) {
				t.Errorf("%s holds the host's private key", p)
			}
			return nil
		})
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}

// TestPipelineEscrowNotTheHosts: an escrowed key that is not the host's
// recipient is refused before anything is dialed, naming each secret
// and how to rekey, and nothing is written.
func TestPipelineEscrowNotTheHosts(t *testing.T) {
	var other sshtest.Key
	f := newEscrowFixture(t, func(sshtest.Key) []byte {
		other = sshtest.NewKey(t, "ed25519", "", "root@elsewhere")
		return hostKeyBytes(t, other)
	})
	o := f.options(t, PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity)
	_, err := Install(context.Background(), o)
	fp := secrets.KeyFingerprint(other.Line)
	rec := strings.Join(strings.Fields(other.Line)[:2], " ")
	want := "the escrowed identity hosts/nas/host-key.age (" + fp + ") is not the recipient of nas's secrets:\n" +
		"  openai-key (openai-key.age): secrets.nix of the input secrets does not list this key for it; not encrypted to this identity (its recipients: X25519, ssh-ed25519)\n" +
		"  smb (hosts/nas/smb.age): secrets.nix of the input secrets does not list this key for it; not encrypted to this identity (its recipients: X25519, ssh-ed25519)\n" +
		"hint: if it is nas's key, add \"" + rec + "\" to those entries' publicKeys in secrets.nix of the input secrets and run fleet secrets rekey, then commit and update the lock; if it is not, escrow nas's own key again (fleet keys escrow nas --target ...)"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	var pe *PhaseError
	if errors.As(err, &pe) {
		t.Fatalf("refused in phase %s: want before connecting", pe.Phase)
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("the new root was touched: %v", ents)
	}
}

// TestPipelineEscrowRefusals: which error for an operator identity that
// cannot open the escrow, and for an escrow the locked rev lacks.
func TestPipelineEscrowRefusals(t *testing.T) {
	f := newEscrowFixture(t, func(h sshtest.Key) []byte { return hostKeyBytes(t, h) })

	o := f.options(t, PhasePreflight, PhaseStage)
	stranger, _ := age.GenerateX25519Identity()
	o.OperatorIdentities = []string{filepath.Join(t.TempDir(), "stranger")}
	os.WriteFile(o.OperatorIdentities[0], []byte(stranger.String()+"\n"), 0o600)
	_, err := Install(context.Background(), o)
	want := "the escrowed identity hosts/nas/host-key.age is encrypted to none of the operator identities (" + o.OperatorIdentities[0] + "): no identity can decrypt\nhint: pass --operator-identity with a key its entry in secrets.nix of the input secrets names"
	if err == nil || err.Error() != want || !errors.Is(err, secrets.ErrCannotDecrypt) {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}

	o = f.options(t, PhasePreflight, PhaseStage)
	o.IdentityAge = "hosts/router/host-key.age"
	_, err = Install(context.Background(), o)
	if err == nil || !strings.HasPrefix(err.Error(), "the escrowed identity hosts/router/host-key.age is not in the input secrets at its locked rev "+shortRev(mustInput(t, f.lock).Locked.Rev)+": ") ||
		!strings.HasSuffix(err.Error(), "\nhint: fleet keys escrow nas writes it; commit and push it, then update the lock (nix flake update secrets)") {
		t.Fatalf("got:\n%v", err)
	}

	o = f.options(t)
	o.Identity = "x"
	if _, err := Install(context.Background(), o); err == nil || err.Error() != "--host-identity and --host-identity-age both name the host's identity: give one" {
		t.Fatalf("got %v", err)
	}
	o = f.options(t)
	o.IdentityAge = "../escape.age"
	if _, err := Install(context.Background(), o); err == nil || err.Error() != `--host-identity-age "../escape.age": want the escrow's path in the secrets repository, like hosts/nas/host-key.age` {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("the new root was touched: %v", ents)
	}
}

func mustInput(t *testing.T, l *flake.Lock) flake.Input {
	t.Helper()
	in, err := l.Input("secrets")
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestEscrowPlaceInFlake: a host whose .age files are the flake's own
// (vault's secrets/) has its escrow there too: read from the flake's
// directory, with the nearest secrets.nix above it, whose entries are
// relative to its own directory; an escrow with no rules file above it is
// refused, saying where it must be.
func TestEscrowPlaceInFlake(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("secrets/secrets.nix", `let operator = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"; in {
  "openai-key.age".publicKeys = [ operator ];
  "hosts/vault/host-key.age".publicKeys = [ operator ];
}
`)
	write("secrets/hosts/vault/host-key.age", "escrow")
	write("other/host-key.age", "stray")
	in := &job{o: Options{Spec: &Spec{Name: "vault"}, Host: HostSource{FlakeDir: dir}, IdentityAge: "secrets/hosts/vault/host-key.age"}}
	files := &SecretFiles{FlakeDir: dir}
	pl, err := in.escrowPlace(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	if string(pl.ct) != "escrow" || pl.rulesName != filepath.Join("secrets", "secrets.nix") {
		t.Fatalf("read %q with rules %s", pl.ct, pl.rulesName)
	}
	if e := pl.entry("secrets/openai-key.age"); e != "openai-key.age" {
		t.Fatalf("entry %q", e)
	}
	if _, ok := pl.rules.Lookup("hosts/vault/host-key.age"); !ok {
		t.Fatal("the rules lack the escrow's entry")
	}
	in.o.IdentityAge = "other/host-key.age"
	_, err = in.escrowPlace(context.Background(), files)
	want := "the escrowed identity other/host-key.age: no secrets.nix above it in the flake says who it and the host's secrets are for\nhint: keep the escrow under the directory of the rules file that lists the host's .age files"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
