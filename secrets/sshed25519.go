package secrets

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"

	"filippo.io/age"
	"filippo.io/edwards25519"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/ssh"
)

// The ssh-ed25519 recipient type of age, implemented here so that each of
// its X25519 operations costs one scalar multiplication. filippo.io/age's
// agessh goes through golang.org/x/crypto/curve25519.X25519, which derives
// (and throws away) a public key from the scalar on every call: two
// multiplications per operation, 34 instead of 12 to rekey a file for five
// recipients. The stanzas are the same bytes either way (the age CLI and
// agessh read ours, we read theirs; see the tests), and the tweak, which
// depends on the key only, is worked out once per key.
//
// Wrapping takes two multiplications, not three: age multiplies the
// exchange's result by the recipient's tweak, t·(e·P), and scalar
// multiplication commutes, so that is e·(t·P), with t·P worked out once
// per recipient. X25519 clamps both scalars either way, and the result is
// the same point: the same shared secret, the same stanza. Of the two, the
// ephemeral public key multiplies the base point, which a precomputed
// table makes cheap (x25519.go), so a recipient costs a ladder and a
// fixed-base multiplication, about 1.4 ladders.

const ed25519Label = "age-encryption.org/v1/ssh-ed25519"

var x25519 = ecdh.X25519()

// sshEd25519Recipient wraps file keys for one ssh-ed25519 public key.
type sshEd25519Recipient struct {
	tag            string // the stanza's first argument (SSHTag)
	theirPublicKey []byte // the key as an X25519 point
	tweaked        []byte // that point multiplied by the key's tweak
}

var _ age.Recipient = &sshEd25519Recipient{}

func newSSHEd25519Recipient(pk ssh.PublicKey) (*sshEd25519Recipient, error) {
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok || pk.Type() != ssh.KeyAlgoED25519 {
		return nil, errors.New("not an ssh-ed25519 key")
	}
	epk, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an ssh-ed25519 key")
	}
	p, err := new(edwards25519.Point).SetBytes(epk)
	if err != nil {
		return nil, fmt.Errorf("invalid Ed25519 public key: %w", err)
	}
	tweak, err := sshTweak(pk)
	if err != nil {
		return nil, err
	}
	their := p.BytesMontgomery()
	tweaked, err := multiply(tweak, their)
	if err != nil {
		return nil, fmt.Errorf("invalid Ed25519 public key: %w", err)
	}
	return &sshEd25519Recipient{tag: SSHTag(pk), theirPublicKey: their, tweaked: tweaked}, nil
}

// sshTweak is the scalar age multiplies every ssh-ed25519 shared secret
// by: HKDF-SHA-256 with no secret, the key's wire form as the salt.
func sshTweak(pk ssh.PublicKey) (*ecdh.PrivateKey, error) {
	t, err := hkdf.Key(sha256.New, nil, pk.Marshal(), ed25519Label, 32)
	if err != nil {
		return nil, err
	}
	return x25519.NewPrivateKey(t)
}

// Wrap makes the stanza "-> ssh-ed25519 TAG SHARE" with the file key
// sealed to a key derived from an ephemeral X25519 exchange with the
// recipient, tweaked: two scalar multiplications, the share (fixed-base,
// on the Edwards form) and the exchange with the tweaked key (a ladder).
func (r *sshEd25519Recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	eph := make([]byte, 32)
	if _, err := rand.Read(eph); err != nil {
		return nil, err
	}
	ourPublicKey, err := x25519Base(eph) // the share
	if err != nil {
		return nil, err
	}
	shared, err := x25519Ladder(eph, r.tweaked) // = tweak·(eph·theirPublicKey)
	if err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, shared, append(ourPublicKey, r.theirPublicKey...), ed25519Label, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	body, err := seal(key, fileKey)
	if err != nil {
		return nil, err
	}
	return []*age.Stanza{{Type: "ssh-ed25519", Args: []string{r.tag, base64.RawStdEncoding.EncodeToString(ourPublicKey)}, Body: body}}, nil
}

// sshEd25519Identity unwraps file keys for one ssh-ed25519 private key.
type sshEd25519Identity struct {
	tag          string
	secret       *ecdh.PrivateKey // the key as an X25519 scalar
	ourPublicKey []byte
	tweak        *ecdh.PrivateKey
}

var _ age.Identity = &sshEd25519Identity{}

func newSSHEd25519Identity(key ed25519.PrivateKey) (*sshEd25519Identity, error) {
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, err
	}
	h := sha512.Sum512(key.Seed())
	secret, err := x25519.NewPrivateKey(h[:32])
	if err != nil {
		return nil, err
	}
	tweak, err := sshTweak(signer.PublicKey())
	if err != nil {
		return nil, err
	}
	return &sshEd25519Identity{tag: SSHTag(signer.PublicKey()), secret: secret, ourPublicKey: secret.PublicKey().Bytes(), tweak: tweak}, nil
}

// Unwrap opens the first ssh-ed25519 stanza for this key: two scalar
// multiplications. Stanzas of other types or keys are not this identity's
// (age.ErrIncorrectIdentity), as age's own identity has it.
func (i *sshEd25519Identity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != "ssh-ed25519" {
			continue
		}
		if len(s.Args) != 2 {
			return nil, errors.New("invalid ssh-ed25519 recipient block")
		}
		share, err := base64.RawStdEncoding.Strict().DecodeString(s.Args[1])
		if err != nil {
			return nil, fmt.Errorf("failed to parse ssh-ed25519 recipient: %w", err)
		}
		if len(share) != 32 {
			return nil, errors.New("invalid ssh-ed25519 recipient block")
		}
		if s.Args[0] != i.tag {
			continue
		}
		shared, err := multiply(i.secret, share)
		if err != nil {
			return nil, fmt.Errorf("invalid X25519 recipient: %w", err)
		}
		if shared, err = multiply(i.tweak, shared); err != nil {
			return nil, err
		}
		key, err := hkdf.Key(sha256.New, shared, append(append([]byte{}, share...), i.ourPublicKey...), ed25519Label, chacha20poly1305.KeySize)
		if err != nil {
			return nil, err
		}
		fileKey, err := open(key, s.Body)
		if err != nil {
			continue // the tag is a short hint: it may be another key's
		}
		return fileKey, nil
	}
	return nil, age.ErrIncorrectIdentity
}

// multiply is one X25519 scalar multiplication of point by k.
func multiply(k *ecdh.PrivateKey, point []byte) ([]byte, error) {
	p, err := x25519.NewPublicKey(point)
	if err != nil {
		return nil, err
	}
	return k.ECDH(p)
}

// seal and open are age's key wrapping: ChaCha20-Poly1305 under a key
// used once, so with a zero nonce.
func seal(key, fileKey []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil), nil
}

func open(key, body []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, make([]byte, chacha20poly1305.NonceSize), body, nil)
}
