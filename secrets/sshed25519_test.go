package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// TestSSHEd25519AgainstAgessh: fleet's ssh-ed25519 recipient and identity
// against filippo.io/age's agessh, both ways, over many keys: the same
// stanza shape, each opens what the other wraps, and the wrong key is
// age.ErrIncorrectIdentity (the real age CLI reads fleet's files in
// TestInteropWithAgeCLI).
func TestSSHEd25519AgainstAgessh(t *testing.T) {
	for i := 0; i < 50; i++ {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		sg, _ := ssh.NewSignerFromKey(priv)
		pk := sg.PublicKey()
		ours, err := newSSHEd25519Recipient(pk)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := agessh.NewEd25519Recipient(pk)
		if err != nil {
			t.Fatal(err)
		}
		oursID, err := newSSHEd25519Identity(priv)
		if err != nil {
			t.Fatal(err)
		}
		theirsID, err := agessh.NewEd25519Identity(priv)
		if err != nil {
			t.Fatal(err)
		}
		otherID, _ := newSSHEd25519Identity(other)
		fileKey := make([]byte, 16)
		rand.Read(fileKey)

		a, err := ours.Wrap(fileKey)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := theirs.Wrap(fileKey)
		if a[0].Type != b[0].Type || a[0].Args[0] != b[0].Args[0] || len(a[0].Args[1]) != len(b[0].Args[1]) || len(a[0].Body) != len(b[0].Body) {
			t.Fatalf("stanza %+v, agessh writes %+v", a[0], b[0])
		}
		for _, c := range []struct {
			name string
			id   age.Identity
			s    []*age.Stanza
		}{{"agessh opens fleet's", theirsID, a}, {"fleet opens agessh's", oursID, b}, {"fleet opens fleet's", oursID, a}} {
			got, err := c.id.Unwrap(c.s)
			if err != nil || !bytes.Equal(got, fileKey) {
				t.Fatalf("%s: %x, %v", c.name, got, err)
			}
		}
		if _, err := otherID.Unwrap(a); !errors.Is(err, age.ErrIncorrectIdentity) {
			t.Fatalf("another key: %v, want ErrIncorrectIdentity", err)
		}
		// Same tag, another key's stanza (tags are 4 bytes): not ours.
		forged := *a[0]
		forged.Body = append([]byte{}, forged.Body...)
		forged.Body[0] ^= 1
		if _, err := oursID.Unwrap([]*age.Stanza{&forged}); !errors.Is(err, age.ErrIncorrectIdentity) {
			t.Fatalf("a stanza with our tag that does not open: %v, want ErrIncorrectIdentity", err)
		}
	}
}
