package sshtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/test/testenv"
	"golang.org/x/crypto/ssh"
)

// Key is an OpenSSH key pair on disk made by ssh-keygen.
type Key struct {
	Path   string        // private key file (0600)
	Public ssh.PublicKey // its public key
	Line   string        // authorized_keys line ("ssh-ed25519 AAAA... comment")
}

// Fingerprint is "SHA256:...".
func (k Key) Fingerprint() string { return ssh.FingerprintSHA256(k.Public) }

// NewKey makes a key pair with ssh-keygen in a temp dir. typ is "ed25519"
// or "rsa"; passphrase "" means unencrypted.
func NewKey(t testenv.TB, typ, passphrase, comment string) Key {
	t.Helper()
	p := filepath.Join(t.TempDir(), "id_"+typ)
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", comment, "-f", p}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	return readKey(t, p)
}

func keygen(t testenv.TB, path, passphrase, comment string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
}

func readKey(t testenv.TB, p string) Key {
	t.Helper()
	b, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Path: p, Public: pk, Line: strings.TrimSpace(string(b))}
}
