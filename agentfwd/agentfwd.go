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
//     public keys, see [ParseAllow]); with no allowlist it exposes none;
//   - refuses add, remove, remove-all, lock, unlock and extension requests;
//   - stops signing after a number of signatures and after a time
//     ([Options] has the defaults the CLI uses);
//   - records every signature request ([Agent.Log]) so the install summary
//     can say which key the installer used, how often and for what.
//
// An Agent is safe for concurrent use; [Agent.For] gives a view of it that
// records its requests under a session label.
package agentfwd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
	// remote may list and use. Empty: none.
	Allow []string
	// MaxSignatures stops signing after this many signatures (0: no limit).
	MaxSignatures int
	// Expires stops signing from this time on (zero: never).
	Expires time.Time
	// TTL stops signing this long after the agent is first forwarded
	// (the first [Agent.For]); zero: never.
	TTL time.Duration
	// AllowFrom says where the allowlist came from, for messages and the
	// summary ("--forward-key", say).
	AllowFrom string
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
	ttl     time.Duration
	from    string
	log     *log.Logger
	now     func() time.Time

	mu      sync.Mutex
	started bool // a view was handed out: the TTL runs
	signed  int
	rec     []Signature
}

// New wraps backing with cfg.
func New(backing agent.ExtendedAgent, cfg Config) (*Agent, error) {
	if backing == nil {
		return nil, errors.New("agentfwd: no backing agent")
	}
	if cfg.MaxSignatures < 0 {
		return nil, fmt.Errorf("agentfwd: negative signature limit %d", cfg.MaxSignatures)
	}
	a := &Agent{backing: backing, max: cfg.MaxSignatures, expires: cfg.Expires, ttl: cfg.TTL, from: cfg.AllowFrom, log: cfg.Log, now: cfg.Now,
		allow: make(map[string]bool, len(cfg.Allow))}
	if a.now == nil {
		a.now = time.Now
	}
	for _, fp := range cfg.Allow {
		if !strings.HasPrefix(fp, "SHA256:") {
			return nil, fmt.Errorf("agentfwd: %q is not a SHA256 fingerprint\nhint: use ParseAllow to turn key files into fingerprints", fp)
		}
		a.allow[fp] = true
	}
	return a, nil
}

// For returns a view of a that records its signature requests under the
// session label (the limits and the log are shared). The first view
// starts the TTL.
func (a *Agent) For(label string) agent.ExtendedAgent {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ttl > 0 && !a.started {
		if exp := a.now().Add(a.ttl); a.expires.IsZero() || exp.Before(a.expires) {
			a.expires = exp
		}
	}
	a.started = true
	return &view{a: a, label: label}
}

// Policy says what the agent allows, for the install summary: "key
// SHA256:... (from --forward-key), at most 4 signatures within 5m0s".
func (a *Agent) Policy() string {
	keys := "no key"
	if fps := a.Allowed(); len(fps) > 0 {
		keys = "key " + strings.Join(fps, ", ")
	}
	if a.from != "" {
		keys += " (from " + a.from + ")"
	}
	var limits []string
	if a.max > 0 {
		limits = append(limits, fmt.Sprintf("at most %d signatures", a.max))
	}
	if a.ttl > 0 {
		limits = append(limits, fmt.Sprintf("within %s of forwarding", a.ttl))
	}
	a.mu.Lock()
	expires := a.expires
	a.mu.Unlock()
	if !expires.IsZero() && a.ttl == 0 {
		limits = append(limits, "until "+expires.Format(time.RFC3339))
	}
	if len(limits) == 0 {
		limits = append(limits, "no limit")
	}
	return "allowed " + keys + ", " + strings.Join(limits, " ")
}

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

func (a *Agent) allowed(fp string) bool { return a.allow[fp] }

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

// Open connects to the operator's agent at socket ("": SSH_AUTH_SOCK) and
// wraps it with cfg. An allowlist none of whose keys the agent holds is
// refused now, before anything is forwarded: it would only fail on the
// host, later. (An agent that cannot list its keys is left to fail there,
// with its own error.) Close the returned closer when done.
func Open(socket string, cfg Config) (*Agent, io.Closer, error) {
	if socket == "" {
		socket = os.Getenv("SSH_AUTH_SOCK")
	}
	if socket == "" {
		return nil, nil, errors.New("no ssh-agent to forward the deploy key from (SSH_AUTH_SOCK is not set)\nhint: ssh-add the deploy key, or fetch the secrets here with --secrets-fetch local")
	}
	backing, conn, err := DialAgent(socket)
	if err != nil {
		return nil, nil, err
	}
	a, err := New(backing, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if missing := a.notHeld(); len(cfg.Allow) > 0 && len(missing) == len(cfg.Allow) {
		conn.Close()
		return nil, nil, fmt.Errorf("your ssh-agent (SSH_AUTH_SOCK) holds none of the keys %s allows: %s\nhint: ssh-add the secrets repository's deploy key, or fetch the secrets here with --secrets-fetch local", orDefault(cfg.AllowFrom, "--forward-key"), strings.Join(missing, ", "))
	}
	return a, conn, nil
}

// notHeld lists the allowed fingerprints the backing agent does not hold
// (none when it cannot list its keys).
func (a *Agent) notHeld() []string {
	keys, err := a.backing.List()
	if err != nil {
		return nil
	}
	held := map[string]bool{}
	for _, k := range keys {
		held[ssh.FingerprintSHA256(k)] = true
	}
	var missing []string
	for _, fp := range a.Allowed() {
		if !held[fp] {
			missing = append(missing, fp)
		}
	}
	return missing
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

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

// Allowed returns the allowlisted fingerprints, sorted.
func (a *Agent) Allowed() []string { return sortedKeys(a.allow) }

// sortedKeys is for stable messages.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
