// Package agentfwd is the SSH agent fleet forwards to a host instead of the
// operator's own.
//
// OpenSSH's -A hands the remote every key in the operator's agent for the
// whole connection. fleet instead serves an [Agent] of its own on the
// forwarded channels (see remote.Client.Forward): it is backed by the
// operator's agent ([DialAgent], SSH_AUTH_SOCK) or by identity files fleet
// loaded ([FromSigners]), and
//
//   - lists and signs only with allowlisted keys (SHA256 fingerprints or
//     public keys, see [ParseAllow]); with no allowlist it exposes the
//     backing keys and logs a warning naming each of them;
//   - refuses add, remove, remove-all, lock, unlock and extension requests;
//   - optionally stops signing after a number of signatures or a deadline;
//   - records every signature request ([Agent.Log]) so the install summary
//     can say which key the installer used, how often and for what.
//
// An Agent is safe for concurrent use; [Agent.For] gives a view of it that
// records its requests under a session label.
package agentfwd

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrRefused is returned for requests the forwarded agent never grants:
// adding, removing, locking, unlocking keys and extensions.
var ErrRefused = errors.New("refused by fleet's forwarded agent")

// ErrNotAllowed is returned when the remote asks for a signature with a key
// that is not allowlisted (or that the backing agent does not hold).
var ErrNotAllowed = errors.New("key not allowed for forwarding")

// ErrLimit is returned when the signature limit or the expiry is reached.
var ErrLimit = errors.New("forwarded agent limit reached")

// Config shapes an [Agent].
type Config struct {
	// Allow holds the SHA256 fingerprints ("SHA256:...") of the keys the
	// remote may list and use. Empty: every backing key (with a warning).
	Allow []string
	// MaxSignatures stops signing after this many signatures (0: no limit).
	MaxSignatures int
	// Expires stops signing from this time on (zero: never).
	Expires time.Time
	// Log receives the warnings and a debug line per signature (may be nil).
	Log *log.Logger
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// Signature is one recorded signature request.
type Signature struct {
	Fingerprint string    // SHA256 fingerprint of the requested key
	Comment     string    // the key's comment in the backing agent, if known
	Time        time.Time // when it was asked for
	Session     string    // the label of the session it came through
	Allowed     bool      // whether a signature was made
	Reason      string    // why not, when refused
}

// Agent is the allowlisting agent. Its zero value is not usable: see [New].
type Agent struct {
	backing agent.ExtendedAgent
	allow   map[string]bool
	max     int
	expires time.Time
	log     *log.Logger
	now     func() time.Time

	mu     sync.Mutex
	signed int
	rec    []Signature
}

// New wraps backing. With no allowlist it lists the backing keys once and
// logs a warning naming each key it will expose.
func New(backing agent.ExtendedAgent, cfg Config) (*Agent, error) {
	if backing == nil {
		return nil, errors.New("agentfwd: no backing agent")
	}
	a := &Agent{backing: backing, max: cfg.MaxSignatures, expires: cfg.Expires, log: cfg.Log, now: cfg.Now}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.MaxSignatures < 0 {
		return nil, fmt.Errorf("agentfwd: negative signature limit %d", cfg.MaxSignatures)
	}
	if len(cfg.Allow) > 0 {
		a.allow = make(map[string]bool, len(cfg.Allow))
		for _, fp := range cfg.Allow {
			if !strings.HasPrefix(fp, "SHA256:") {
				return nil, fmt.Errorf("agentfwd: %q is not a SHA256 fingerprint\nhint: use ParseAllow to turn key files into fingerprints", fp)
			}
			a.allow[fp] = true
		}
		return a, nil
	}
	keys, err := backing.List()
	if err != nil {
		return nil, fmt.Errorf("agentfwd: list backing agent: %w", err)
	}
	if a.log != nil {
		for _, k := range keys {
			a.log.Warn("forwarding an agent key with no allowlist: the host can sign with it", "fingerprint", ssh.FingerprintSHA256(k), "comment", k.Comment)
		}
		if len(keys) > 0 {
			a.log.Warn("hint: restrict forwarding with --forward-key FINGERPRINT_OR_PUBKEY_FILE, or turn it off with --no-forward-agent")
		}
	}
	return a, nil
}

// For returns a view of a that records its signature requests under the
// session label (the limits and the log are shared).
func (a *Agent) For(label string) agent.ExtendedAgent { return &view{a: a, label: label} }

// Log returns a copy of every signature request so far, oldest first.
func (a *Agent) Log() []Signature {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Signature(nil), a.rec...)
}

// Signatures counts the signatures made (refused requests not counted).
func (a *Agent) Signatures() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.signed
}

// Summary describes the signatures made for the install summary, one line
// per key and session: "the installer used key SHA256:... 2 times while
// fetching the secrets". Refused requests get a line of their own.
// It returns "" when nothing was asked for.
func (a *Agent) Summary() string {
	type k struct {
		fp, session string
		ok          bool
	}
	counts := map[k]int{}
	var order []k
	for _, s := range a.Log() {
		key := k{s.Fingerprint, s.Session, s.Allowed}
		if counts[key] == 0 {
			order = append(order, key)
		}
		counts[key]++
	}
	var lines []string
	for _, key := range order {
		n := counts[key]
		times := "times"
		if n == 1 {
			times = "time"
		}
		what := ""
		if key.session != "" {
			what = " while " + key.session
		}
		if key.ok {
			lines = append(lines, fmt.Sprintf("the installer used key %s %d %s%s", key.fp, n, times, what))
		} else {
			lines = append(lines, fmt.Sprintf("the installer was refused key %s %d %s%s", key.fp, n, times, what))
		}
	}
	return strings.Join(lines, "\n")
}

func (a *Agent) allowed(fp string) bool { return a.allow == nil || a.allow[fp] }

func (a *Agent) list() ([]*agent.Key, error) {
	keys, err := a.backing.List()
	if err != nil {
		return nil, err
	}
	out := keys[:0:0]
	for _, k := range keys {
		if a.allowed(ssh.FingerprintSHA256(k)) {
			out = append(out, k)
		}
	}
	return out, nil
}

func (a *Agent) sign(label string, key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	fp := ssh.FingerprintSHA256(key)
	rec := Signature{Fingerprint: fp, Time: a.now(), Session: label}
	if keys, err := a.backing.List(); err == nil {
		for _, k := range keys {
			if ssh.FingerprintSHA256(k) == fp {
				rec.Comment = k.Comment
			}
		}
	}
	refuse := func(err error) (*ssh.Signature, error) {
		rec.Reason = err.Error()
		a.rec = append(a.rec, rec)
		if a.log != nil {
			a.log.Warn("forwarded agent refused a signature", "fingerprint", fp, "session", label, "reason", rec.Reason)
		}
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.allowed(fp):
		return refuse(fmt.Errorf("%w: %s", ErrNotAllowed, fp))
	case !a.expires.IsZero() && !rec.Time.Before(a.expires):
		return refuse(fmt.Errorf("%w: expired at %s", ErrLimit, a.expires.Format(time.RFC3339)))
	case a.max > 0 && a.signed >= a.max:
		return refuse(fmt.Errorf("%w: %d signatures made", ErrLimit, a.signed))
	}
	// The count is taken before signing (under the lock) so concurrent
	// requests cannot overshoot the limit.
	sig, err := a.backing.SignWithFlags(key, data, flags)
	if err != nil {
		return refuse(fmt.Errorf("backing agent: %w", err))
	}
	a.signed++
	rec.Allowed = true
	a.rec = append(a.rec, rec)
	if a.log != nil {
		a.log.Debug("forwarded agent signed", "fingerprint", fp, "session", label)
	}
	return sig, nil
}

// The Agent itself serves requests with no session label.

// List implements agent.Agent: the allowlisted backing keys.
func (a *Agent) List() ([]*agent.Key, error) { return a.list() }

// Sign implements agent.Agent.
func (a *Agent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return a.sign("", key, data, 0)
}

// SignWithFlags implements agent.ExtendedAgent.
func (a *Agent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	return a.sign("", key, data, flags)
}

// Add implements agent.Agent: always refused.
func (a *Agent) Add(agent.AddedKey) error { return fmt.Errorf("add key: %w", ErrRefused) }

// Remove implements agent.Agent: always refused.
func (a *Agent) Remove(ssh.PublicKey) error { return fmt.Errorf("remove key: %w", ErrRefused) }

// RemoveAll implements agent.Agent: always refused.
func (a *Agent) RemoveAll() error { return fmt.Errorf("remove all keys: %w", ErrRefused) }

// Lock implements agent.Agent: always refused.
func (a *Agent) Lock([]byte) error { return fmt.Errorf("lock: %w", ErrRefused) }

// Unlock implements agent.Agent: always refused.
func (a *Agent) Unlock([]byte) error { return fmt.Errorf("unlock: %w", ErrRefused) }

// Signers implements agent.Agent: not offered to the remote (the server
// side never calls it), nil.
func (a *Agent) Signers() ([]ssh.Signer, error) { return nil, fmt.Errorf("signers: %w", ErrRefused) }

// Extension implements agent.ExtendedAgent: always refused.
func (a *Agent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

type view struct {
	a     *Agent
	label string
}

func (v *view) List() ([]*agent.Key, error) { return v.a.list() }
func (v *view) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return v.a.sign(v.label, key, data, 0)
}
func (v *view) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	return v.a.sign(v.label, key, data, flags)
}
func (v *view) Add(k agent.AddedKey) error                   { return v.a.Add(k) }
func (v *view) Remove(k ssh.PublicKey) error                 { return v.a.Remove(k) }
func (v *view) RemoveAll() error                             { return v.a.RemoveAll() }
func (v *view) Lock(p []byte) error                          { return v.a.Lock(p) }
func (v *view) Unlock(p []byte) error                        { return v.a.Unlock(p) }
func (v *view) Signers() ([]ssh.Signer, error)               { return v.a.Signers() }
func (v *view) Extension(t string, b []byte) ([]byte, error) { return v.a.Extension(t, b) }

// DialAgent connects to the operator's agent at socket (SSH_AUTH_SOCK).
// Close the returned connection when done.
func DialAgent(socket string) (agent.ExtendedAgent, net.Conn, error) {
	if socket == "" {
		return nil, nil, errors.New("no SSH agent: SSH_AUTH_SOCK is not set\nhint: start ssh-agent and ssh-add the deploy key, pass -i KEY, or use --no-forward-agent")
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to SSH agent %s: %w\nhint: is ssh-agent running? check SSH_AUTH_SOCK", socket, err)
	}
	return agent.NewClient(conn), conn, nil
}

// FromSigners is a read-only agent over signers fleet loaded from identity
// files (the private keys stay in this process). comments, if not nil,
// names each signer's key in listings.
func FromSigners(signers []ssh.Signer, comments []string) agent.ExtendedAgent {
	s := &signerAgent{}
	for i, sg := range signers {
		c := ""
		if i < len(comments) {
			c = comments[i]
		}
		s.keys = append(s.keys, signerKey{sg, c})
	}
	return s
}

type signerKey struct {
	signer  ssh.Signer
	comment string
}

type signerAgent struct{ keys []signerKey }

func (s *signerAgent) List() ([]*agent.Key, error) {
	out := make([]*agent.Key, 0, len(s.keys))
	for _, k := range s.keys {
		pk := k.signer.PublicKey()
		out = append(out, &agent.Key{Format: pk.Type(), Blob: pk.Marshal(), Comment: k.comment})
	}
	return out, nil
}

func (s *signerAgent) Sign(key ssh.PublicKey, data []byte) (*ssh.Signature, error) {
	return s.SignWithFlags(key, data, 0)
}

func (s *signerAgent) SignWithFlags(key ssh.PublicKey, data []byte, flags agent.SignatureFlags) (*ssh.Signature, error) {
	want := key.Marshal()
	for _, k := range s.keys {
		if string(k.signer.PublicKey().Marshal()) != string(want) {
			continue
		}
		algo := ""
		switch {
		case flags&agent.SignatureFlagRsaSha256 != 0:
			algo = ssh.KeyAlgoRSASHA256
		case flags&agent.SignatureFlagRsaSha512 != 0:
			algo = ssh.KeyAlgoRSASHA512
		}
		if algo != "" {
			as, ok := k.signer.(ssh.AlgorithmSigner)
			if !ok {
				return nil, fmt.Errorf("key %s cannot sign with %s", ssh.FingerprintSHA256(key), algo)
			}
			return as.SignWithAlgorithm(nil, data, algo)
		}
		return k.signer.Sign(nil, data)
	}
	return nil, fmt.Errorf("key %s not loaded", ssh.FingerprintSHA256(key))
}

func (s *signerAgent) Add(agent.AddedKey) error   { return ErrRefused }
func (s *signerAgent) Remove(ssh.PublicKey) error { return ErrRefused }
func (s *signerAgent) RemoveAll() error           { return ErrRefused }
func (s *signerAgent) Lock([]byte) error          { return ErrRefused }
func (s *signerAgent) Unlock([]byte) error        { return ErrRefused }
func (s *signerAgent) Signers() ([]ssh.Signer, error) {
	out := make([]ssh.Signer, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.signer
	}
	return out, nil
}
func (s *signerAgent) Extension(string, []byte) ([]byte, error) {
	return nil, agent.ErrExtensionUnsupported
}

// Allowed returns the allowlisted fingerprints, sorted (nil: no allowlist).
func (a *Agent) Allowed() []string {
	if a.allow == nil {
		return nil
	}
	return sortedKeys(a.allow)
}

// sortedKeys is for stable messages.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
