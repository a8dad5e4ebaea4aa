package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// ErrCannotDecrypt is wrapped when none of the identities can open a file.
var ErrCannotDecrypt = errors.New("no identity can decrypt")

// DecryptFile decrypts the age file at path (binary or armored).
func DecryptFile(path string, ids *Identities) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Decrypt(b, ids)
}

// Decrypt decrypts an age file's bytes (binary or armored).
func Decrypt(ciphertext []byte, ids *Identities) ([]byte, error) {
	var src io.Reader = bytes.NewReader(ciphertext)
	if IsArmored(ciphertext) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, ids.AgeIdentities()...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%w: the file is encrypted to none of the %d loaded identities\nhint: pass the right key with -i", ErrCannotDecrypt, len(ids.List))
		}
		return nil, err
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Encrypt encrypts plaintext to recipients (as written in secrets.nix),
// armored if armored is set.
func Encrypt(plaintext []byte, recipients []string, armored bool) ([]byte, error) {
	rs, err := ParseRecipients(recipients)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, errors.New("no recipients")
	}
	return encryptTo(plaintext, rs, armored)
}

// encryptTo is Encrypt to recipients already parsed.
func encryptTo(plaintext []byte, rs []age.Recipient, armored bool) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(plaintext) + 200*len(rs) + 512)
	var dst io.Writer = &buf
	var aw io.WriteCloser
	if armored {
		aw = armor.NewWriter(&buf)
		dst = aw
	}
	w, err := age.Encrypt(dst, rs...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if aw != nil {
		if err := aw.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
