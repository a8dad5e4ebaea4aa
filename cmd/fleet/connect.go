package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/fleetnix/fleet/remote"
)

// connFlags are the flags of every command that connects to a machine.
type connFlags struct {
	target     string
	identities []string
	hostKey    string
	acceptNew  bool
	knownHosts []string
	sshConfig  string
	insecure   bool
	timeout    time.Duration
}

// add registers the connection flags on fs.
func (cf *connFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&cf.target, "target", "t", "", "machine to connect to: user@host[:port], ssh://user@host:port or a ~/.ssh/config alias")
	fs.StringVar(&cf.target, "target-host", "", "same as --target (nixos-anywhere's spelling)")
	_ = fs.MarkHidden("target-host")
	fs.StringArrayVarP(&cf.identities, "identity", "i", nil, "private key file to authenticate with (repeatable; the ssh-agent is used too)")
	fs.StringVar(&cf.hostKey, "host-key", "", "pin the host key by fingerprint (SHA256:...); wins over known_hosts")
	fs.BoolVar(&cf.acceptNew, "accept-new", false, "trust a host key seen for the first time and record it in known_hosts")
	fs.StringArrayVar(&cf.knownHosts, "known-hosts", nil, "known_hosts file (repeatable; default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
	fs.StringVar(&cf.sshConfig, "ssh-config", "", `ssh_config file (default ~/.ssh/config and /etc/ssh/ssh_config; "none" for none)`)
	fs.BoolVar(&cf.insecure, "insecure-ignore-host-key", false, "DANGEROUS: accept any host key (anyone on the path can impersonate the machine)")
	fs.DurationVar(&cf.timeout, "connect-timeout", 20*time.Second, "time limit for connecting and the SSH handshake")
}

// resolve turns the flags into a target and dial options. A missing or
// malformed target is a usage error.
func (cf *connFlags) resolve(a *app) (remote.Target, remote.Options, error) {
	if cf.target == "" {
		return remote.Target{}, remote.Options{}, usagef("--target is required\nhint: --target root@10.0.0.5 (or user@host:port, or an alias from ~/.ssh/config)")
	}
	t, err := parseTarget(cf.target)
	if err != nil {
		return t, remote.Options{}, err
	}
	o, err := cf.options(a, askPassphrase)
	if err != nil {
		return t, remote.Options{}, err
	}
	cf.warnInsecure(a, t)
	return t, o, nil
}

// resolveMany is resolve for several targets, given as the user wrote
// them. Every target is parsed before anything is dialed (a malformed one
// is a usage error) and ssh_config is read once. The options ask for an
// encrypted key's passphrase at most once, however many dials need it at
// the same time; forget wipes the remembered passphrases and must be
// called when the dials are done.
func (cf *connFlags) resolveMany(a *app, names []string) (ts []remote.Target, o remote.Options, forget func(), err error) {
	ts = make([]remote.Target, len(names))
	for i, n := range names {
		if ts[i], err = parseTarget(n); err != nil {
			return nil, remote.Options{}, nil, err
		}
	}
	pass := &passphraseOnce{ask: askPassphrase}
	if o, err = cf.options(a, pass.get); err != nil {
		return nil, remote.Options{}, nil, err
	}
	for _, t := range ts {
		cf.warnInsecure(a, t)
	}
	return ts, o, pass.forget, nil
}

// parseTarget reads a target as the user wrote it; a malformed one is a
// usage error.
func parseTarget(s string) (remote.Target, error) {
	t, err := remote.ParseTarget(s)
	if err != nil {
		return t, usageError{err}
	}
	return t, nil
}

// options turns every flag but the target into dial options, with ask
// asking for key passphrases. Host-key flags that do not go together are
// a usage error.
func (cf *connFlags) options(a *app, ask remote.PassphraseFunc) (remote.Options, error) {
	if cf.hostKey != "" && cf.acceptNew {
		return remote.Options{}, usagef("--host-key and --accept-new do not go together\nhint: a pinned key needs no trust on first use; drop --accept-new")
	}
	if cf.insecure && (cf.hostKey != "" || cf.acceptNew) {
		return remote.Options{}, usagef("--insecure-ignore-host-key cannot be combined with --host-key or --accept-new")
	}
	var cfg *remote.SSHConfig
	var err error
	switch cf.sshConfig {
	case "none":
	case "":
		cfg, err = remote.LoadSSHConfig()
	default:
		if _, serr := os.Stat(cf.sshConfig); serr != nil {
			return remote.Options{}, usagef("--ssh-config %s: %v", cf.sshConfig, serr)
		}
		cfg, err = remote.LoadSSHConfig(cf.sshConfig)
	}
	if err != nil {
		return remote.Options{}, err
	}
	return remote.Options{
		HostKey:   remote.HostKeyPolicy{Pin: cf.hostKey, KnownHosts: cf.knownHosts, AcceptNew: cf.acceptNew, InsecureIgnore: cf.insecure},
		Auth:      remote.Auth{IdentityFiles: cf.identities, Passphrase: ask},
		SSHConfig: cfg,
		Log:       a.log,
		Timeout:   cf.timeout,
	}, nil
}

// warnInsecure says loudly that t's host key will not be checked, when
// --insecure-ignore-host-key is set.
func (cf *connFlags) warnInsecure(a *app, t remote.Target) {
	if cf.insecure {
		a.log.Warn("host key checking is OFF (--insecure-ignore-host-key): anyone on the network path can impersonate " + t.String() + " and receive what fleet sends")
	}
}

// dial connects to the flags' target.
func (cf *connFlags) dial(ctx context.Context, a *app) (*remote.Client, error) {
	t, o, err := cf.resolve(a)
	if err != nil {
		return nil, err
	}
	return dialTarget(ctx, a, t, o)
}

// dialTarget connects to t with o.
func dialTarget(ctx context.Context, a *app, t remote.Target, o remote.Options) (*remote.Client, error) {
	c, err := remote.Dial(ctx, t, o)
	if err != nil {
		return nil, err
	}
	a.log.Debug("connected", "host", c.Host(), "fingerprint", fingerprint(c))
	return c, nil
}

// fingerprint is the SHA256 fingerprint of the host key c verified.
func fingerprint(c *remote.Client) string { return ssh.FingerprintSHA256(c.HostKey()) }

// askPassphrase asks for a key's passphrase; a variable so tests can
// answer instead of a terminal.
var askPassphrase remote.PassphraseFunc = terminalPassphrase

// passphraseOnce asks for each key file's passphrase at most once, for
// dials running at the same time: the first asks, the others wait for
// its answer (or its error) and get a copy.
type passphraseOnce struct {
	ask remote.PassphraseFunc

	mu  sync.Mutex
	got map[string]passAnswer
}

type passAnswer struct {
	pass []byte
	err  error
}

// get is the remote.PassphraseFunc.
func (p *passphraseOnce) get(file string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ans, ok := p.got[file]; ok {
		return bytes.Clone(ans.pass), ans.err
	}
	pass, err := p.ask(file)
	if p.got == nil {
		p.got = map[string]passAnswer{}
	}
	// The caller wipes what it gets: keep a copy of our own.
	p.got[file] = passAnswer{pass: bytes.Clone(pass), err: err}
	return pass, err
}

// forget wipes the remembered passphrases.
func (p *passphraseOnce) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ans := range p.got {
		clear(ans.pass)
	}
	p.got = nil
}

// terminalPassphrase asks for a key's passphrase on the controlling
// terminal, never on stdin (which may carry data).
func terminalPassphrase(file string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", remote.ErrNoTerminal, err)
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, remote.ErrNoTerminal
	}
	fmt.Fprintf(tty, "Enter passphrase for %s: ", file)
	pass, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, errors.New("empty passphrase")
	}
	return pass, nil
}
