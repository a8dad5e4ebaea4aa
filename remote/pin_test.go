package remote_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestPinKeyTypeOnAHostWithSeveralKeys: a host with an RSA and an ed25519
// host key, as NixOS has by default. x/crypto's client prefers RSA, so a
// pin of the ed25519 key alone is refused (the host presents its RSA
// key); with the pinned key's type the host is asked for that key, and
// the pin holds, for either key.
func TestPinKeyTypeOnAHostWithSeveralKeys(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "op")
	rsaKey := sshtest.NewKey(t, "rsa", "", "host-rsa")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}, Config: []string{"HostKey " + rsaKey.Path}})
	dial := func(pin remote.HostKeyPolicy) error {
		c, err := remote.Dial(context.Background(), target(s), remote.Options{
			HostKey: pin, Auth: remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
		})
		if err == nil {
			c.Close()
		}
		return err
	}
	err := dial(remote.HostKeyPolicy{Pin: s.Fingerprint()})
	if !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Fatalf("pin of the ed25519 key without its type: want the RSA key presented and refused, got %v", err)
	}
	if err := dial(remote.HostKeyPolicy{Pin: s.Fingerprint(), PinKeyType: s.HostKey.Type()}); err != nil {
		t.Fatalf("pin of the ed25519 key with its type: %v", err)
	}
	if err := dial(remote.HostKeyPolicy{Pin: rsaKey.Fingerprint(), PinKeyType: rsaKey.Public.Type()}); err != nil {
		t.Fatalf("pin of the RSA key with its type: %v", err)
	}
}
