package remote_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestPinKeyTypeOnAHostWithSeveralKeys: a host with an RSA and an ed25519
// host key, as NixOS has by default (x/crypto's client would ask for RSA
// first). A pin of unknown type asks in OpenSSH's order, so the ed25519
// key (the one ssh and the host's console show) is presented and holds;
// a pin of the RSA key holds when its type is given, and without it the
// mismatch names the key the host presented.
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
	if err := dial(remote.HostKeyPolicy{Pin: s.Fingerprint()}); err != nil {
		t.Fatalf("pin of the ed25519 key, type unknown: %v", err)
	}
	if err := dial(remote.HostKeyPolicy{Pin: s.Fingerprint(), PinKeyType: s.HostKey.Type()}); err != nil {
		t.Fatalf("pin of the ed25519 key with its type: %v", err)
	}
	if err := dial(remote.HostKeyPolicy{Pin: rsaKey.Fingerprint(), PinKeyType: rsaKey.Public.Type()}); err != nil {
		t.Fatalf("pin of the RSA key with its type: %v", err)
	}
	err := dial(remote.HostKeyPolicy{Pin: rsaKey.Fingerprint()})
	if !errors.Is(err, remote.ErrHostKeyMismatch) || !strings.Contains(err.Error(), "host presented "+s.Fingerprint()) {
		t.Fatalf("pin of the RSA key, type unknown: want the ed25519 key presented and refused, got %v", err)
	}
}
