package remote

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key errors callers branch on.
var (
	// ErrHostKeyMismatch: the host presented a key other than the pinned
	// or known one. The error text names both fingerprints.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrUnknownHost: no known_hosts entry and no trust on first use.
	ErrUnknownHost = errors.New("unknown host key")
)

// HostKeyPolicy says how a host's key is checked. The zero value is strict:
// the key must be in the default known_hosts files.
type HostKeyPolicy struct {
	// Pin is a "SHA256:..." fingerprint; when set it is the only check.
	Pin string
	// PinKeyType is the pinned key's type (ssh-ed25519, ssh-rsa...), when
	// known: the host is asked for a key of that type, so that one with
	// several host keys (NixOS has RSA and ed25519) presents the pinned
	// one. Unknown, the host is asked in OpenSSH's order (ed25519 first).
	PinKeyType string
	// KnownHosts are the known_hosts files to read; nil means
	// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
	KnownHosts []string
	// AcceptNew trusts a host seen for the first time and appends its key
	// to the first KnownHosts file. A changed key is still refused.
	AcceptNew bool
	// InsecureIgnore accepts any key. Only for an explicit, loud flag.
	InsecureIgnore bool
}

func (p HostKeyPolicy) files() []string {
	if p.KnownHosts != nil {
		return p.KnownHosts
	}
	return []string{expandHome("~/.ssh/known_hosts"), "/etc/ssh/ssh_known_hosts"}
}

// hostKeyChecker builds the ssh.HostKeyCallback for one endpoint, plus the
// host key algorithms to ask for (those known_hosts has keys of, so the
// server presents a key we can check).
type hostKeyChecker struct {
	policy HostKeyPolicy
	name   string // known_hosts name of the endpoint, for messages and appends
	mu     sync.Mutex
	seen   ssh.PublicKey // the key the host presented
	added  string        // the file a new key was recorded in
}

func (h *hostKeyChecker) callback() (ssh.HostKeyCallback, []string, error) {
	p := h.policy
	switch {
	case p.Pin != "":
		if !strings.HasPrefix(p.Pin, "SHA256:") {
			return nil, nil, fmt.Errorf("--host-key %q: want a SHA256:... fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host prints it)", p.Pin)
		}
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			h.record(key)
			if got := ssh.FingerprintSHA256(key); got != p.Pin {
				return fmt.Errorf("%w for %s: pinned %s, host presented %s\nhint: check the fingerprint on the host's console; if it really changed, pin the new one", ErrHostKeyMismatch, h.name, p.Pin, got)
			}
			return nil
		}, pinAlgorithms(p.PinKeyType), nil
	case p.InsecureIgnore:
		return func(_ string, _ net.Addr, key ssh.PublicKey) error { h.record(key); return nil }, nil, nil
	}
	var existing []string
	for _, f := range p.files() {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	var kh ssh.HostKeyCallback
	if len(existing) > 0 {
		var err error
		if kh, err = knownhosts.New(existing...); err != nil {
			return nil, nil, fmt.Errorf("read known_hosts: %w", err)
		}
	}
	algos := knownAlgorithms(kh, h.name)
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		h.record(key)
		got := ssh.FingerprintSHA256(key)
		if kh != nil {
			err := kh(hostname, remote, key)
			if err == nil {
				return nil
			}
			var ke *knownhosts.KeyError
			if !errors.As(err, &ke) {
				return fmt.Errorf("check host key: %w", err)
			}
			if len(ke.Want) > 0 {
				var want []string
				for _, w := range ke.Want {
					want = append(want, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
				}
				return fmt.Errorf("%w for %s: known_hosts has %s, host presented %s\nhint: if the host was reinstalled, remove the old entry with ssh-keygen -R '%s', or pin the new key with --host-key", ErrHostKeyMismatch, h.name, strings.Join(want, ", "), got, h.name)
			}
		}
		if !p.AcceptNew {
			return fmt.Errorf("%w: %s (%s %s) is not in known_hosts\nhint: compare with the host's console and pass --host-key %s, or trust on first use with --accept-new", ErrUnknownHost, h.name, key.Type(), got, got)
		}
		return h.appendKnown(key)
	}
	return cb, algos, nil
}

func (h *hostKeyChecker) record(key ssh.PublicKey) {
	h.mu.Lock()
	h.seen = key
	h.mu.Unlock()
}

// appendKnown records a first-seen key in the first known_hosts file.
func (h *hostKeyChecker) appendKnown(key ssh.PublicKey) error {
	file := h.policy.files()[0]
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	defer f.Close()
	line := knownhosts.Line([]string{h.name}, key)
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		// Make sure the new line does not join an unterminated last line.
		if b, err := os.ReadFile(file); err == nil && !bytes.HasSuffix(b, []byte("\n")) {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	h.mu.Lock()
	h.added = file
	h.mu.Unlock()
	return nil
}

// knownAlgorithms asks the known_hosts callback which key types it holds for
// name, by presenting a key it cannot know.
func knownAlgorithms(kh ssh.HostKeyCallback, name string) []string {
	if kh == nil {
		return nil
	}
	err := kh(knownhosts.Normalize(name), &net.TCPAddr{IP: net.IPv4zero}, probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	types := make([]string, len(ke.Want))
	for i, w := range ke.Want {
		types[i] = w.Key.Type()
	}
	return algorithmsFor(types...)
}

// pinAlgorithms are the host key algorithms a pin asks for: those of the
// pinned key's type when it is known, else OpenSSH's order (ed25519, then
// ECDSA, then RSA: the key `ssh` shows a person, and the one the
// --host-key hint has them read), not x/crypto's (RSA first), so a host
// with several keys (NixOS has RSA and ed25519) presents the one its
// console shows.
func pinAlgorithms(keyType string) []string {
	if keyType != "" {
		return algorithmsFor(keyType)
	}
	return algorithmsFor(ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA)
}

// algorithmsFor are the host key algorithms that ask for keys of the
// given types (an RSA key signs with SHA-2 first); nil for none.
func algorithmsFor(types ...string) []string {
	var out []string
	add := func(a string) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, t := range types {
		switch t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			add(ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return out
}

// probeKey is a fixed public key no host has, used to list known key types.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.ParsePublicKey(mustB64("AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	if err != nil {
		panic(err)
	}
	return k
}()
