package agentfwd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
)

// The limits a forwarded agent has unless the options raise them: a fetch
// signs once per connection, so a few signatures within a few minutes.
const (
	DefaultMaxSignatures = 4
	DefaultTTL           = 5 * time.Minute
)

// ErrNoAllowlist: no key is allowed, so forwarding would serve nothing.
var ErrNoAllowlist = errors.New("no key allowed through the forwarded agent")

// Options are the command-line choices about forwarding, for
// `fleet install`: wire them with [Options.AddFlags] and turn them into a
// [Config] with [Options.Config].
type Options struct {
	// Keys are --forward-key values: SHA256 fingerprints, public key files
	// or authorized_keys lines.
	Keys []string
	// Disabled is --no-forward-agent: no agent is forwarded at all (the
	// secrets are fetched locally instead).
	Disabled bool
	// MaxSignatures is --forward-max-signatures (0: DefaultMaxSignatures).
	MaxSignatures int
	// TTL is --forward-ttl: forwarding stops signing this long after it
	// begins (0: DefaultTTL).
	TTL time.Duration
	// Socket is the operator's agent ("": SSH_AUTH_SOCK).
	Socket string
}

// AddFlags registers --forward-key (repeatable), --no-forward-agent,
// --forward-max-signatures and --forward-ttl on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Keys, "forward-key", nil, "only this key may be used through the forwarded agent: SHA256 fingerprint or public key file (repeatable; default: the IdentityFile ~/.ssh/config gives the secrets server)")
	fs.BoolVar(&o.Disabled, "no-forward-agent", false, "do not forward an SSH agent to the installer (fetch the secrets locally)")
	fs.IntVar(&o.MaxSignatures, "forward-max-signatures", DefaultMaxSignatures, "stop signing through the forwarded agent after this many signatures")
	fs.DurationVar(&o.TTL, "forward-ttl", DefaultTTL, "stop signing through the forwarded agent this long after forwarding begins")
}

// Config parses the key values into the allowlist and sets the limits.
// With no --forward-key, the allowlist is the public halves of
// identityFiles: the IdentityFile entries ssh_config gives server (the
// host the forwarded agent authenticates to), as ssh would offer them. With neither
// it returns ErrNoAllowlist: the agent would serve no key.
func (o Options) Config(server string, identityFiles []string) (Config, error) {
	if o.MaxSignatures < 0 {
		return Config{}, fmt.Errorf("--forward-max-signatures %d: must not be negative", o.MaxSignatures)
	}
	if o.TTL < 0 {
		return Config{}, fmt.Errorf("--forward-ttl %s: must not be negative", o.TTL)
	}
	c := Config{MaxSignatures: o.MaxSignatures, TTL: o.TTL, AllowFrom: "--forward-key"}
	if c.MaxSignatures == 0 {
		c.MaxSignatures = DefaultMaxSignatures
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	var err error
	if c.Allow, err = ParseAllow(o.Keys); err != nil {
		return Config{}, err
	}
	if len(c.Allow) == 0 {
		var files []string
		c.Allow, files = publicKeysOf(identityFiles)
		c.AllowFrom = "IdentityFile " + strings.Join(files, ", ") + " for " + server + " in ssh_config"
	}
	if len(c.Allow) == 0 {
		return Config{}, fmt.Errorf("%w: neither --forward-key nor an IdentityFile for %s in ssh_config names the key to forward\nhint: pass --forward-key with the deploy key (KEY.pub or its SHA256 fingerprint), give %s an IdentityFile in ~/.ssh/config, or fetch the secrets here with --secrets-fetch local", ErrNoAllowlist, server, server)
	}
	return c, nil
}

// publicKeysOf returns the fingerprints of the identity files' public
// halves (FILE.pub, else the key file itself, whose public half OpenSSH
// keeps in the clear even when it is encrypted), and the files they came
// from. Files that do not exist are passed over, as ssh does.
func publicKeysOf(files []string) (fps, from []string) {
	seen := map[string]bool{}
	for _, f := range files {
		pk := publicKeyOf(f)
		if pk == nil {
			continue
		}
		if fp := ssh.FingerprintSHA256(pk); !seen[fp] {
			seen[fp] = true
			fps, from = append(fps, fp), append(from, f)
		}
	}
	return fps, from
}

func publicKeyOf(file string) ssh.PublicKey {
	if b, err := os.ReadFile(file + ".pub"); err == nil {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
			return pk
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s.PublicKey()
	case errors.As(err, &pm):
		return pm.PublicKey
	}
	return nil
}

// ParseAllow turns --forward-key values into SHA256 fingerprints. A value
// is a fingerprint ("SHA256:..."), an authorized_keys line, or the path
// of a public key file (one or more authorized_keys lines). Duplicates are
// dropped; the order is kept.
func ParseAllow(values []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(fp string) {
		if !seen[fp] {
			seen[fp] = true
			out = append(out, fp)
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		switch {
		case v == "":
			return nil, fmt.Errorf("--forward-key: empty value\nhint: pass a SHA256 fingerprint (ssh-keygen -lf KEY.pub) or a public key file")
		case strings.HasPrefix(v, "SHA256:"):
			if len(v) != len("SHA256:")+43 {
				return nil, fmt.Errorf("--forward-key %q: not a SHA256 fingerprint (expected 43 base64 characters after SHA256:)\nhint: copy it from ssh-keygen -lf KEY.pub or ssh-add -l", v)
			}
			add(v)
		case strings.HasPrefix(v, "MD5:"):
			return nil, fmt.Errorf("--forward-key %q: MD5 fingerprints are not accepted\nhint: use the SHA256 fingerprint (ssh-keygen -lf KEY.pub)", v)
		default:
			if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(v)); err == nil {
				add(ssh.FingerprintSHA256(pk))
				continue
			}
			fps, err := parseKeyFile(v)
			if err != nil {
				return nil, err
			}
			for _, fp := range fps {
				add(fp)
			}
		}
	}
	return out, nil
}

func parseKeyFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--forward-key %s: %w\nhint: pass a SHA256 fingerprint or the path of a public key file (KEY.pub)", path, err)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return nil, fmt.Errorf("--forward-key %s: this is a private key\nhint: pass the public key file (%s.pub) or its fingerprint", path, path)
	}
	var fps []string
	rest := b
	for len(bytes.TrimSpace(rest)) > 0 {
		pk, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			if len(fps) == 0 {
				return nil, fmt.Errorf("--forward-key %s: no public key in it: %w\nhint: pass a public key file (KEY.pub) or a SHA256 fingerprint", path, err)
			}
			break
		}
		fps = append(fps, ssh.FingerprintSHA256(pk))
		rest = r
	}
	if len(fps) == 0 {
		return nil, fmt.Errorf("--forward-key %s: no public key in it\nhint: pass a public key file (KEY.pub) or a SHA256 fingerprint", path)
	}
	return fps, nil
}
