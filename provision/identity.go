package provision

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/remote"
)

// identity streams the decryption identity (and, when it is not also the
// SSH host key, a host key fleet generates) into the new root: 0600, root,
// atomically, nowhere else on the installer. The host key's public half is
// kept to pin the first boot.
func (in *job) identity(ctx context.Context) error {
	o := in.o
	key, name, err := in.identityKey()
	if err != nil {
		return err
	}
	if in.escrowed == nil {
		defer clear(key)
	}
	pl, err := in.placement(key, name)
	if err != nil {
		return err
	}
	in.changed = true
	if err := in.putKey(ctx, key, pl.dest, pl.pub); err != nil {
		return err
	}
	if pl.hostKey == nil {
		in.hostPub = pl.pub // the identity is the host key
	} else {
		priv, hpub, err := newHostKey(pl.hostKey.Type, o.Spec.HostName)
		if err != nil {
			return err
		}
		defer clear(priv)
		if err := in.putKey(ctx, priv, pl.hostKey.Path, hpub); err != nil {
			return err
		}
		in.hostPub = hpub
	}
	if o.ExtraFiles != "" {
		if err := remote.UploadTree(ctx, in.r, o.ExtraFiles, o.Root, remote.TreeOptions{}); err != nil {
			return fmt.Errorf("extra files: %w", err)
		}
	}
	for _, c := range o.Chown {
		full, err := underRoot(o.Root, "/"+strings.TrimPrefix(c.Path, "/"))
		if err != nil {
			return fmt.Errorf("--chown: %w", err)
		}
		// -h: a symlink among the extra files is owned, not followed.
		if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"chown", "-R", "-h", "--", c.Owner, full}}); err != nil {
			return fmt.Errorf("--chown %s %s: %w", c.Path, c.Owner, err)
		}
	}
	return nil
}

// identityKey is the identity's private key and its name for messages:
// restored from its escrow (in memory, cleared when the install ends), or
// read from the --host-identity file (the caller clears it).
func (in *job) identityKey() ([]byte, string, error) {
	if in.escrowed != nil {
		return in.escrowed.Key, in.escrowed.Name, nil
	}
	key, err := os.ReadFile(in.o.Identity)
	if err != nil {
		return nil, "", fmt.Errorf("identity: %w", err)
	}
	return key, in.o.Identity, nil
}

// placement is where the identity goes on the host, given its bytes and
// its name for messages; see placeIdentity.
func (in *job) placement(key []byte, name string) (placement, error) {
	pub, keyType, err := identityPublic(key, name)
	if err != nil {
		return placement{}, err
	}
	pl, err := placeIdentity(in.o.Spec, in.o.IdentityDest, keyType)
	pl.pub = pub
	return pl, err
}

// putKey uploads a private key to dest under Root (0600, root) and its
// public half, when there is one, to dest.pub (0644).
func (in *job) putKey(ctx context.Context, key []byte, dest, pub string) error {
	full, err := underRoot(in.o.Root, dest)
	if err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"mkdir", "-p", "-m", "0755", path.Dir(full)}}); err != nil {
		return err
	}
	if err := remote.Upload(ctx, in.r, bytes.NewReader(key), int64(len(key)), full, remote.UploadOptions{Mode: 0o600, Owner: "0:0"}); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	if pub != "" {
		p := pub + "\n"
		if err := remote.Upload(ctx, in.r, strings.NewReader(p), int64(len(p)), full+".pub", remote.UploadOptions{Mode: 0o644, Owner: "0:0"}); err != nil {
			return fmt.Errorf("install %s.pub: %w", dest, err)
		}
	}
	return nil
}

// identityPublic returns the public half of an identity file and its
// host key type (rsa, ed25519...) when it is an OpenSSH key; both are ""
// for an age X25519 identity. A passphrase-protected key is refused: the
// host cannot unlock it at boot.
func identityPublic(key []byte, name string) (pub, keyType string, err error) {
	s, err := ssh.ParsePrivateKey(key)
	if err == nil {
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), sshKeyType(s.PublicKey().Type()), nil
	}
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return "", "", fmt.Errorf("identity %s is passphrase-protected: the host could not unlock it at boot\nhint: use an unencrypted host identity (fleet keys create without --passphrase)", name)
	}
	if ids, err := age.ParseIdentities(bytes.NewReader(key)); err == nil && len(ids) > 0 {
		return "", "", nil // an age identity: no public half to install
	}
	return "", "", fmt.Errorf("identity %s is neither an OpenSSH private key nor an age identity", name)
}

// newHostKey makes an SSH host key of keyType (ed25519, rsa: 4096 bits as
// NixOS's default, ecdsa: P-256 as ssh-keygen's) in memory.
func newHostKey(keyType, comment string) ([]byte, string, error) {
	var priv crypto.Signer
	var err error
	switch keyType {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 4096)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, "", fmt.Errorf("fleet cannot make a %q host key", keyType)
	}
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@"+comment)
	if err != nil {
		return nil, "", err
	}
	spub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))) + " root@" + comment, nil
}
