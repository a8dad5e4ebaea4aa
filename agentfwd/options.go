package agentfwd

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
)

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
	// MaxSignatures is --forward-max-signatures (0: no limit).
	MaxSignatures int
	// TTL is --forward-ttl: forwarding stops signing this long after
	// Config is called (0: no expiry).
	TTL time.Duration
}

// AddFlags registers --forward-key (repeatable), --no-forward-agent,
// --forward-max-signatures and --forward-ttl on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Keys, "forward-key", nil, "only this key may be used through the forwarded agent: SHA256 fingerprint or public key file (repeatable)")
	fs.BoolVar(&o.Disabled, "no-forward-agent", false, "do not forward an SSH agent to the installer (fetch the secrets locally)")
	fs.IntVar(&o.MaxSignatures, "forward-max-signatures", 0, "stop signing through the forwarded agent after this many signatures (0: no limit)")
	fs.DurationVar(&o.TTL, "forward-ttl", 0, "stop signing through the forwarded agent after this long (0: no expiry)")
}

// Config parses the key values and computes the expiry from now.
func (o Options) Config(now time.Time) (Config, error) {
	allow, err := ParseAllow(o.Keys)
	if err != nil {
		return Config{}, err
	}
	if o.MaxSignatures < 0 {
		return Config{}, fmt.Errorf("--forward-max-signatures %d: must not be negative", o.MaxSignatures)
	}
	if o.TTL < 0 {
		return Config{}, fmt.Errorf("--forward-ttl %s: must not be negative", o.TTL)
	}
	c := Config{Allow: allow, MaxSignatures: o.MaxSignatures}
	if o.TTL > 0 {
		c.Expires = now.Add(o.TTL)
	}
	return c, nil
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
