package provision

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/remote"
)

// identityDest is where the decryption identity goes on the host.
func (in *job) identityDest() string {
	if in.o.IdentityDest != "" {
		return in.o.IdentityDest
	}
	if len(in.o.Spec.IdentityPaths) > 0 {
		return in.o.Spec.IdentityPaths[0]
	}
	return "/etc/ssh/ssh_host_ed25519_key"
}

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
	dest := in.identityDest()
	pub, isSSH, err := identityPublic(key, name)
	if err != nil {
		return err
	}
	in.changed = true
	if err := in.putKey(ctx, key, dest, pub); err != nil {
		return err
	}
	hostKeyPath := "/etc/ssh/ssh_host_ed25519_key"
	if len(o.Spec.HostKeys) > 0 {
		hostKeyPath = o.Spec.HostKeys[0]
	}
	if isSSH && slices.Contains(o.Spec.HostKeys, dest) {
		in.hostPub = pub // the identity is the host key
	} else {
		priv, hpub, err := newHostKey(o.Spec.HostName)
		if err != nil {
			return err
		}
		defer clear(priv)
		if err := in.putKey(ctx, priv, hostKeyPath, hpub); err != nil {
			return err
		}
		in.hostPub = hpub
	}
	if o.ExtraFiles != "" {
		if err := remote.UploadTree(ctx, in.r, o.ExtraFiles, o.Root, remote.TreeOptions{}); err != nil {
			return fmt.Errorf("extra files: %w", err)
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

// identityPublic returns the public half of an identity file (an OpenSSH
// key, or an age X25519 identity) and whether it is an SSH key. A
// passphrase-protected key is refused: the host cannot unlock it at boot.
func identityPublic(key []byte, name string) (string, bool, error) {
	s, err := ssh.ParsePrivateKey(key)
	if err == nil {
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))), true, nil
	}
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return "", false, fmt.Errorf("identity %s is passphrase-protected: the host could not unlock it at boot\nhint: use an unencrypted host identity (fleet keys create without --passphrase)", name)
	}
	if ids, err := age.ParseIdentities(bytes.NewReader(key)); err == nil && len(ids) > 0 {
		return "", false, nil // an age identity: no public half to install
	}
	return "", false, fmt.Errorf("identity %s is neither an OpenSSH private key nor an age identity", name)
}

// newHostKey makes an ed25519 SSH host key in memory.
func newHostKey(comment string) ([]byte, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "root@"+comment)
	if err != nil {
		return nil, "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))) + " root@" + comment, nil
}
