package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// SecretsSource reads the declared .age files at the secrets input's
// locked rev: from a local clone of the secrets repository (git show
// REV:PATH, whatever is checked out there), or from a fresh clone of the
// locked URL made with the operator's own SSH setup.
type SecretsSource struct {
	dir     string // a git repository with the locked rev
	rev     string
	cleanup func()
}

// OpenSecrets prepares reading the secrets input at its locked rev. dir is
// a local clone ("" to clone the locked URL into a temp dir).
func OpenSecrets(ctx context.Context, r remote.Runner, in flake.Input, dir string) (*SecretsSource, error) {
	s := &SecretsSource{dir: dir, rev: in.Locked.Rev, cleanup: func() {}}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "fleet-secrets-")
		if err != nil {
			return nil, err
		}
		s.dir, s.cleanup = filepath.Join(tmp, "repo.git"), func() { os.RemoveAll(tmp) }
		if _, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "clone", "-q", "--bare", "--", in.Locked.CloneURL(), s.dir}, Env: gitEnv}); err != nil {
			s.cleanup()
			return nil, fmt.Errorf("fetch the secrets input %s to check it decrypts: %w\nhint: or point --secrets-dir at your clone of it", in.Locked.CloneURL(), err)
		}
	}
	if _, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", s.dir, "cat-file", "-e", "--end-of-options", s.rev + "^{commit}"}}); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("the secrets repository %s has no commit %s (locked in flake.lock)\nhint: git -C %s fetch, or update the lock", s.dir, s.rev, s.dir)
	}
	return s, nil
}

// gitEnv is the environment of every local git that fetches: no prompt,
// and only the transports a flake.lock may name.
var gitEnv = []string{"GIT_TERMINAL_PROMPT=0", "GIT_ALLOW_PROTOCOL=" + gitProtocols}

// gitProtocols are the git transports fleet fetches the secrets input
// with (flake.ReadLock refuses others).
const gitProtocols = "file:ssh:https:http"

// Close removes a temporary clone.
func (s *SecretsSource) Close() { s.cleanup() }

// maxCiphertext bounds a secret file read from the repository: far beyond
// any agenix secret, and still a bound.
const maxCiphertext = 256 << 20

// Read returns a file's ciphertext at the locked rev.
func (s *SecretsSource) Read(ctx context.Context, r remote.Runner, file string) ([]byte, error) {
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", s.dir, "show", "--end-of-options", s.rev + ":" + file}, MaxStdout: maxCiphertext})
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", file, shortRev(s.rev), err)
	}
	return res.Stdout, nil
}

// HashDecrypted decrypts ciphertext with ids and returns the sha256 (hex)
// of the plaintext, which lives only in memory and is wiped.
func HashDecrypted(ciphertext []byte, ids *secrets.Identities) (string, error) {
	plain, err := secrets.Decrypt(ciphertext, ids)
	if err != nil {
		return "", err
	}
	defer clear(plain)
	sum := sha256.Sum256(plain)
	return hex.EncodeToString(sum[:]), nil
}

// SecretFiles reads the declared .age files as the host gets them: the
// flake's own (Input SelfInput) from the flake's directory, which is
// staged as it is; an input's at its locked rev, from a [SecretsSource].
type SecretFiles struct {
	FlakeDir string
	Input    *SecretsSource // nil when no secret is in an input
}

// OpenSecretFiles prepares reading spec's .age files: the input they are
// in (if any) at its locked rev in lock, from the local clone secretsDir
// or a fresh clone of the locked URL.
func OpenSecretFiles(ctx context.Context, r remote.Runner, spec *Spec, lock *flake.Lock, flakeDir, secretsDir string) (*SecretFiles, error) {
	f := &SecretFiles{FlakeDir: flakeDir}
	if !spec.needsInput() {
		return f, nil
	}
	if lock == nil {
		return nil, fmt.Errorf("host %s's .age files are in the input %s, and the flake has no flake.lock\nhint: nix flake lock", spec.Name, spec.SecretsInput)
	}
	in, err := lock.Input(spec.SecretsInput)
	if err != nil {
		return nil, err
	}
	if f.Input, err = OpenSecrets(ctx, r, in, secretsDir); err != nil {
		return nil, err
	}
	return f, nil
}

// Close removes a temporary clone.
func (f *SecretFiles) Close() {
	if f.Input != nil {
		f.Input.Close()
	}
}

// Read returns the ciphertext of sec's .age file.
func (f *SecretFiles) Read(ctx context.Context, r remote.Runner, sec Secret) ([]byte, error) {
	if sec.Input != SelfInput {
		if f.Input == nil {
			return nil, fmt.Errorf("%s: the input %s is not open", sec.File, sec.Input)
		}
		return f.Input.Read(ctx, r, sec.File)
	}
	if !filepath.IsLocal(sec.File) {
		return nil, fmt.Errorf("%s: not a path inside the flake", sec.File)
	}
	p := filepath.Join(f.FlakeDir, sec.File)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxCiphertext {
		return nil, fmt.Errorf("%s: not a regular file of at most %d MiB", p, maxCiphertext>>20)
	}
	return os.ReadFile(p)
}

// DecryptAll hashes the local decryption of every secret the spec
// declares. It returns the hashes of those that decrypted and one error
// line per secret that did not.
func DecryptAll(ctx context.Context, r remote.Runner, spec *Spec, files *SecretFiles, ids *secrets.Identities) (map[string]string, []string) {
	out := map[string]string{}
	var failed []string
	for _, n := range spec.SecretNames() {
		sec := spec.Secrets[n]
		ct, err := files.Read(ctx, r, sec)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		sum, err := HashDecrypted(ct, ids)
		switch {
		case errors.Is(err, secrets.ErrCannotDecrypt):
			failed = append(failed, fmt.Sprintf("%s (%s): not encrypted to this identity (its recipients: %s)", n, sec.File, recipientsOf(ct)))
			continue
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s (%s): %v", n, sec.File, strings.TrimPrefix(err.Error(), "age: ")))
			continue
		}
		out[n] = sum
	}
	return out, failed
}

// DecryptSecrets decrypts, locally and in memory, every secret spec
// declares with the identity file, reading the .age files where h's
// flake has them (see [OpenSecretFiles]), and returns their sha256s.
// Every secret must decrypt.
func DecryptSecrets(ctx context.Context, r remote.Runner, spec *Spec, lock *flake.Lock, identity string, h HostSource) (map[string]string, error) {
	if len(spec.Secrets) == 0 || identity == "" {
		return map[string]string{}, nil
	}
	ids, err := LoadIdentity(identity)
	if err != nil {
		return nil, err
	}
	files, err := OpenSecretFiles(ctx, r, spec, lock, h.FlakeDir, h.SecretsDir)
	if err != nil {
		return nil, err
	}
	defer files.Close()
	decrypted, failed := DecryptAll(ctx, r, spec, files, ids)
	if len(failed) > 0 {
		return nil, cannotDecrypt(identity, spec.Name, failed)
	}
	return decrypted, nil
}

// cannotDecrypt is the error for identities (named by what) that left
// the failed secrets of host undecrypted.
func cannotDecrypt(what, host string, failed []string) error {
	return fmt.Errorf("identity %s cannot decrypt every secret %s declares:\n  %s\nhint: rekey them to its public key (fleet secrets rekey), or pass the right --host-identity", what, host, strings.Join(failed, "\n  "))
}

func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// LoadIdentity reads a host decryption identity: an unencrypted OpenSSH
// key (ed25519 or RSA) or an age identity file. A host must unlock it at
// boot without anyone typing, so a passphrase-protected key is refused.
func LoadIdentity(file string) (*secrets.Identities, error) {
	ids, err := secrets.LoadIdentities([]string{file}, nil)
	if err != nil {
		return nil, err
	}
	for _, id := range ids.List {
		if id.Encrypted {
			return nil, fmt.Errorf("identity %s is passphrase-protected: the host could not unlock it at boot\nhint: use an unencrypted host identity (fleet keys create without --passphrase)", file)
		}
	}
	return ids, nil
}

// recipientsOf names the stanza types of an age file's header.
func recipientsOf(ct []byte) string {
	h, err := secrets.ParseHeader(bytes.NewReader(ct))
	if err != nil {
		return "unreadable header"
	}
	var types []string
	for _, st := range h.Stanzas {
		types = append(types, st.Type)
	}
	return strings.Join(types, ", ")
}
