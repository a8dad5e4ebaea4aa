package secrets

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"filippo.io/age/plugin"
	"golang.org/x/crypto/ssh"
)

// ErrNoIdentity is returned when no identity could be loaded.
var ErrNoIdentity = errors.New("no identity")

// ErrNoTerminal is wrapped when a passphrase is needed but there is no
// terminal to ask on.
var ErrNoTerminal = errors.New("no terminal to ask for the passphrase")

// PassphraseFunc asks for the passphrase of the key in file. It is called
// at most once per key per [Identities].
type PassphraseFunc func(file string) ([]byte, error)

// Identity is one loaded identity and where it came from.
type Identity struct {
	File      string // file it was read from
	Recipient string // its public key as it appears in secrets.nix ("ssh-ed25519 AAAA...", "age1..."); empty for plugins
	Encrypted bool   // a passphrase-protected SSH key
	age.Identity
}

// Identities is the set of identities of one run.
type Identities struct {
	List []*Identity
}

// DefaultIdentityPaths are the keys agenix tries when no -i is given:
// ~/.ssh/id_ed25519 and ~/.ssh/id_rsa, when present.
func DefaultIdentityPaths() []string {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range []string{"id_ed25519", "id_rsa"} {
		p := filepath.Join(home, ".ssh", n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// LoadIdentities reads every file in paths: OpenSSH/PEM private keys
// (ed25519, rsa), age identity files (AGE-SECRET-KEY-1... lines) and plugin
// identities (AGE-PLUGIN-... lines, the plugin must be on PATH). With no
// paths it uses [DefaultIdentityPaths]. ask is called lazily, once per key.
func LoadIdentities(paths []string, ask PassphraseFunc) (*Identities, error) {
	if len(paths) == 0 {
		paths = DefaultIdentityPaths()
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no -i given and neither ~/.ssh/id_ed25519 nor ~/.ssh/id_rsa exists\nhint: pass -i KEY", ErrNoIdentity)
	}
	ids := &Identities{}
	for _, p := range paths {
		l, err := loadIdentityFile(p, ask)
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w", p, err)
		}
		ids.List = append(ids.List, l...)
	}
	return ids, nil
}

func loadIdentityFile(path string, ask PassphraseFunc) ([]*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseIdentities(path, b, ask)
}

// ParseIdentities reads identities from data, the bytes of a private key
// or age identity file held in memory (a decrypted escrow), named name in
// messages. The caller clears data when done.
func ParseIdentities(name string, data []byte, ask PassphraseFunc) (*Identities, error) {
	l, err := parseIdentities(name, data, ask)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", name, err)
	}
	return &Identities{List: l}, nil
}

func parseIdentities(path string, b []byte, ask PassphraseFunc) ([]*Identity, error) {
	text := string(b)
	if strings.Contains(text, "PRIVATE KEY-----") {
		return loadSSHIdentity(path, b, ask)
	}
	var out []*Identity
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			id, err := age.ParseX25519Identity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			out = append(out, &Identity{File: path, Recipient: id.Recipient().String(), Identity: id})
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			id, err := age.ParseHybridIdentity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			out = append(out, &Identity{File: path, Recipient: id.Recipient().String(), Identity: id})
		case strings.HasPrefix(line, "AGE-PLUGIN-"):
			id, err := plugin.NewIdentity(line, pluginUI)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			out = append(out, &Identity{File: path, Identity: id})
		default:
			return nil, fmt.Errorf("line %d: not an SSH private key nor an age identity\nhint: -i takes a private key file", n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w in file", ErrNoIdentity)
	}
	return out, nil
}

// pluginUI lets plugins talk to the user on stderr only.
var pluginUI = plugin.NewTerminalUI(func(f string, v ...any) {
	fmt.Fprintf(os.Stderr, "age-plugin: "+f+"\n", v...)
}, func(f string, v ...any) {
	fmt.Fprintf(os.Stderr, "age-plugin: warning: "+f+"\n", v...)
})

func loadSSHIdentity(path string, pem []byte, ask PassphraseFunc) ([]*Identity, error) {
	id, err := agessh.ParseIdentity(pem)
	if err == nil {
		rec := ""
		if raw, err := ssh.ParseRawPrivateKey(pem); err == nil {
			if sg, err := ssh.NewSignerFromKey(raw); err == nil {
				rec = authorizedKey(sg.PublicKey())
			}
			// ssh-ed25519 keys unwrap with fleet's own (see sshed25519.go).
			if k, ok := raw.(*ed25519.PrivateKey); ok {
				raw = *k
			}
			if k, ok := raw.(ed25519.PrivateKey); ok {
				if fast, err := newSSHEd25519Identity(k); err == nil {
					id = fast
				}
			}
		}
		return []*Identity{{File: path, Recipient: rec, Identity: id}}, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, err
	}
	pub := missing.PublicKey
	if pub == nil {
		pb, rerr := os.ReadFile(path + ".pub")
		if rerr != nil {
			return nil, fmt.Errorf("encrypted key without its public key\nhint: put it next to the key as %s.pub", path)
		}
		if pub, _, _, _, err = ssh.ParseAuthorizedKey(pb); err != nil {
			return nil, fmt.Errorf("%s.pub: %w", path, err)
		}
	}
	var (
		once   sync.Once
		pass   []byte
		passEr error
	)
	get := func() ([]byte, error) {
		once.Do(func() {
			if ask == nil {
				passEr = ErrNoTerminal
				return
			}
			pass, passEr = ask(path)
		})
		if passEr != nil {
			return nil, fmt.Errorf("key %s is passphrase-protected: %w; hint: run fleet in a terminal to type the passphrase, or pass -i with an unencrypted key", path, passEr)
		}
		return pass, nil
	}
	eid, err := agessh.NewEncryptedSSHIdentity(pub, pem, get)
	if err != nil {
		return nil, err
	}
	return []*Identity{{File: path, Recipient: authorizedKey(pub), Encrypted: true, Identity: &lockedIdentity{id: eid}}}, nil
}

// lockedIdentity serialises Unwrap: EncryptedSSHIdentity caches the
// decrypted key without a lock.
type lockedIdentity struct {
	mu sync.Mutex
	id age.Identity
}

func (l *lockedIdentity) Unwrap(s []*age.Stanza) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.id.Unwrap(s)
}

func authorizedKey(pk ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}

// AgeIdentities returns the identities for age.Decrypt.
func (ids *Identities) AgeIdentities() []age.Identity {
	out := make([]age.Identity, len(ids.List))
	for i, id := range ids.List {
		out[i] = id.Identity
	}
	return out
}

// ParseRecipients turns recipients as written in secrets.nix into age
// recipients. Plugin recipients need their plugin on PATH.
func ParseRecipients(list []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, s := range list {
		s = strings.TrimSpace(s)
		var (
			r   age.Recipient
			err error
		)
		switch {
		case strings.HasPrefix(s, ssh.KeyAlgoED25519+" "):
			var pk ssh.PublicKey
			if pk, _, _, _, err = ssh.ParseAuthorizedKey([]byte(s)); err == nil {
				r, err = newSSHEd25519Recipient(pk)
			}
		case strings.HasPrefix(s, "ssh-"):
			r, err = agessh.ParseRecipient(s)
		case strings.HasPrefix(s, "age1pq1"):
			r, err = age.ParseHybridRecipient(s)
		case strings.HasPrefix(s, "age1") && strings.LastIndex(s, "1") == 3:
			r, err = age.ParseX25519Recipient(s)
		case strings.HasPrefix(s, "age1"):
			r, err = plugin.NewRecipient(s, pluginUI)
		default:
			err = errors.New("unknown recipient type")
		}
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", shortKey(s), err)
		}
		out = append(out, r)
	}
	return out, nil
}
