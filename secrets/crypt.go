package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	var buf bytes.Buffer
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

// TempPrefix starts the names of the temporary files [WriteFileAtomic]
// creates next to their destination.
const TempPrefix = ".fleet-tmp-"

// WriteFileAtomic writes data to path so that path holds either its old or
// its new content at any moment: a temp file in the same directory, fsync,
// chmod perm, rename, fsync of the directory. The temp file is removed on
// error.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
