package secrets

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// A host's escrow is its decryption identity (the private key its secrets
// are encrypted to), age-encrypted to the operators only, in the secrets
// repository beside the secrets: when the host's system disk dies, a
// reinstall restores that identity and every secret still decrypts
// without a rekey. Its rules entry, by default [EscrowFile], says who the
// operators are: every recipient of that entry. The host's own key must
// not be one of them (an identity encrypted to itself protects nothing);
// the entry is a rules entry like any other, so rekey and ls treat it
// alike.

// EscrowFile is the default rules entry of host's escrowed identity.
func EscrowFile(host string) string { return "hosts/" + host + "/host-key.age" }

// ErrEscrow marks an escrow that cannot be made or used as the rules say.
var ErrEscrow = errors.New("escrow refused")

// HostKey is a host's decryption identity, held in memory.
type HostKey struct {
	Name      string // where it came from, for messages
	Key       []byte // the private key file's bytes (OpenSSH or age)
	Recipient string // its public key as secrets.nix writes it
	IDs       *Identities
}

// ParseHostKey reads a host identity from its private key file's bytes:
// an unencrypted OpenSSH key (ed25519 or RSA) or one age X25519 identity.
// A passphrase-protected key is refused: the host could not unlock it at
// boot. The caller clears key when done.
func ParseHostKey(name string, key []byte) (*HostKey, error) {
	ids, err := ParseIdentities(name, key, nil)
	if err != nil {
		return nil, err
	}
	if len(ids.List) != 1 {
		return nil, fmt.Errorf("identity %s holds %d identities, want the host's one", name, len(ids.List))
	}
	id := ids.List[0]
	if id.Encrypted {
		return nil, fmt.Errorf("identity %s is passphrase-protected: the host could not unlock it at boot\nhint: use an unencrypted host identity (fleet keys create without --passphrase)", name)
	}
	if id.Recipient == "" {
		return nil, fmt.Errorf("identity %s: a plugin identity is no host identity", name)
	}
	return &HostKey{Name: name, Key: key, Recipient: id.Recipient, IDs: ids}, nil
}

// Fingerprint names the key in messages: SHA256:... for an SSH key, the
// age recipient otherwise.
func (k *HostKey) Fingerprint() string { return KeyFingerprint(k.Recipient) }

// KeyFingerprint is SHA256:... for an SSH public key as secrets.nix writes
// it; other recipients as they are.
func KeyFingerprint(rec string) string {
	if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rec)); err == nil {
		return pk.Type() + " " + ssh.FingerprintSHA256(pk)
	}
	return rec
}

// EscrowRecipients are the operators the rules give the escrow entry:
// all its recipients. It refuses a missing entry with the exact line to
// add to the rules file (the recipients every entry has, the host's own
// key left out), and an entry that lists the host's own key.
func EscrowRecipients(r *Rules, entry, host string, k *HostKey) ([]string, error) {
	rule, ok := r.Lookup(entry)
	if !ok {
		return nil, &EscrowEntryError{Rules: r.Path, Entry: entry, Host: host, Suggest: commonRecipients(r, k.Recipient)}
	}
	if NamesKey(rule.PublicKeys, k.Recipient) {
		return nil, fmt.Errorf("%s: %q lists %s's own key (%s): the escrow is for the operators: %w\nhint: remove it from that entry's publicKeys; keep the operators' keys", r.Path, entry, host, k.Fingerprint(), ErrEscrow)
	}
	if !slices.ContainsFunc(r.Entries, func(e Rule) bool { return NamesKey(e.PublicKeys, k.Recipient) }) {
		return nil, fmt.Errorf("%s (%s) is a recipient of no entry in %s: it does not look like %s's decryption identity: %w\nhint: escrow the key %s decrypts its secrets with (age.identityPaths; by default its ssh_host_ed25519_key)", k.Name, k.Fingerprint(), r.Path, host, ErrEscrow, host)
	}
	return rule.PublicKeys, nil
}

// EscrowEntryError is a rules file without the escrow's entry.
type EscrowEntryError struct {
	Rules, Entry, Host string
	Suggest            []string // the recipients every other entry has
}

// Line is the rules line to add.
func (e *EscrowEntryError) Line() string {
	keys := "\"OPERATOR-KEY\""
	if len(e.Suggest) > 0 {
		q := make([]string, len(e.Suggest))
		for i, k := range e.Suggest {
			q[i] = strconv.Quote(k)
		}
		keys = strings.Join(q, " ")
	}
	return fmt.Sprintf("%s.publicKeys = [ %s ];", strconv.Quote(e.Entry), keys)
}

func (e *EscrowEntryError) Error() string {
	who := "the operators' keys (every entry's recipients but the host's)"
	if len(e.Suggest) == 0 {
		who = "your operators' public keys in place of OPERATOR-KEY (no key is in every entry)"
	}
	return fmt.Sprintf("%s has no entry %q for %s's escrowed identity: %v\nhint: add this line to %s, with %s, then run this again:\n  %s",
		e.Rules, e.Entry, e.Host, ErrEscrow, e.Rules, who, e.Line())
}

func (e *EscrowEntryError) Unwrap() error { return ErrEscrow }

// commonRecipients are the recipients every entry has, but not the host's.
func commonRecipients(r *Rules, host string) []string {
	if len(r.Entries) == 0 {
		return nil
	}
	var out []string
	for _, k := range r.Entries[0].PublicKeys {
		if SameKey(k, host) {
			continue
		}
		if !slices.ContainsFunc(r.Entries, func(e Rule) bool { return !NamesKey(e.PublicKeys, k) }) {
			out = append(out, k)
		}
	}
	return out
}

// HostRecipientOf checks that k is the recipient the rules give each of
// the host's secrets (files, relative to the rules' directory): it
// returns the files whose entry is missing or does not list k.
func HostRecipientOf(r *Rules, k *HostKey, files []string) (missing, notListed []string) {
	for _, f := range files {
		rule, ok := r.Lookup(f)
		switch {
		case !ok:
			missing = append(missing, f)
		case !NamesKey(rule.PublicKeys, k.Recipient):
			notListed = append(notListed, f)
		}
	}
	return missing, notListed
}
