package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
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
	// envPassword: the login password is in $SSHPASS (nixos-anywhere's
	// --env-password). Without it, fleet asks on the terminal when a host
	// wants a password; a password is never taken from the command line.
	envPassword bool
	// noSudo runs commands as a login user that is not root, rather than
	// through sudo -n.
	noSudo bool
	// targets and hostKeys are --target and --host-key of a command that
	// reaches several hosts by name (addPerHost): T or HOST=T each.
	targets, hostKeys []string
}

// add registers the connection flags on fs.
func (cf *connFlags) add(fs *pflag.FlagSet) {
	fs.StringVarP(&cf.target, "target", "t", "", "machine to connect to: user@host[:port], ssh://user@host:port or a ~/.ssh/config alias")
	fs.StringVar(&cf.target, "target-host", "", "same as --target (nixos-anywhere's spelling)")
	_ = fs.MarkHidden("target-host")
	fs.StringVar(&cf.hostKey, "host-key", "", "pin the host key by fingerprint (SHA256:...); wins over known_hosts")
	cf.addCommon(fs)
}

// addPerHost registers the connection flags of a command that reaches
// hosts by name: --target and --host-key take HOST=VALUE (or, for one
// host, VALUE alone) and repeat (see perHost).
func (cf *connFlags) addPerHost(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&cf.targets, "target", "t", nil, "where a host is: HOST=T (repeatable; T is user@host[:port], ssh://... or a ~/.ssh/config alias; default: the host's name)")
	fs.StringArrayVar(&cf.hostKeys, "host-key", nil, "pin a host's key: HOST=SHA256:... (repeatable); wins over known_hosts")
	cf.addCommon(fs)
}

// perHost reads flag's values as HOST=VALUE into a map; a value without
// HOST= is for only, when only is set (one host), and an error otherwise.
// A HOST the command does not check is a usage error naming those it does.
func perHost(flag string, values []string, hosts []string, only string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		h, val, ok := strings.Cut(v, "=")
		if !ok || !hostAttr.MatchString(h) {
			if only == "" {
				return nil, usagef("--%s %q: want HOST=VALUE\nhint: --%s nas=%s", flag, v, flag, v)
			}
			h, val = only, v
		}
		if hosts != nil && !slices.Contains(hosts, h) {
			return nil, usagef("--%s %s: no host %s is checked\nhint: the hosts are %s", flag, v, h, strings.Join(hosts, ", "))
		}
		if _, dup := out[h]; dup {
			return nil, usagef("--%s: host %s is given twice", flag, h)
		}
		out[h] = val
	}
	return out, nil
}

// hostAttr is a host name as --target HOST=T names it.
var hostAttr = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// addCommon registers the flags add and addPerHost share.
func (cf *connFlags) addCommon(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&cf.identities, "identity", "i", nil, "private key file to authenticate with (repeatable; the ssh-agent is used too)")
	fs.BoolVar(&cf.acceptNew, "accept-new", false, "trust a host key seen for the first time and record it in known_hosts")
	fs.StringArrayVar(&cf.knownHosts, "known-hosts", nil, "known_hosts file (repeatable; default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
	fs.StringVar(&cf.sshConfig, "ssh-config", "", `ssh_config file (default ~/.ssh/config and /etc/ssh/ssh_config; "none" for none)`)
	fs.BoolVar(&cf.insecure, "insecure-ignore-host-key", false, "DANGEROUS: accept any host key (anyone on the path can impersonate the machine)")
	fs.DurationVar(&cf.timeout, "connect-timeout", 20*time.Second, "time limit for connecting and the SSH handshake")
	fs.BoolVar(&cf.envPassword, "env-password", false, "log in with the password in $SSHPASS when the host refuses your keys (the NixOS ISO's nixos user); without it fleet asks on the terminal")
	fs.BoolVar(&cf.noSudo, "no-sudo", false, "run commands as a login user that is not root (by default they run through sudo -n)")
}

// applyPort puts port (nixos-anywhere's -p) into the target; a target
// that names another port is a usage error.
func (cf *connFlags) applyPort(port int) error {
	if port == 0 || cf.target == "" {
		return nil
	}
	if port < 1 || port > 65535 {
		return usagef("--ssh-port %d: want 1 to 65535", port)
	}
	t, err := parseTarget(cf.target)
	if err != nil {
		return err
	}
	switch t.Port {
	case 0:
		t.Port = port
		cf.target = t.String()
	case port:
	default:
		return usagef("--ssh-port %d, but --target %s names port %d", port, cf.target, t.Port)
	}
	return nil
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
	o, err := cf.options(a, askPassphrase, askPassword)
	if err != nil {
		return t, remote.Options{}, err
	}
	cf.warnInsecure(a, t)
	return t, o, nil
}

// resolveMany is resolve for several targets, given as the user wrote
// them. Every target is parsed before anything is dialed (a malformed one
// is a usage error) and ssh_config is read once. The options ask for an
// encrypted key's passphrase (and each host's password) at most once,
// however many dials need it at the same time; forget wipes the remembered
// passphrases and passwords and must be called when the dials are done.
func (cf *connFlags) resolveMany(a *app, names []string) (ts []remote.Target, o remote.Options, forget func(), err error) {
	ts = make([]remote.Target, len(names))
	for i, n := range names {
		if ts[i], err = parseTarget(n); err != nil {
			return nil, remote.Options{}, nil, err
		}
	}
	pass := &passphraseOnce{ask: askPassphrase}
	pw := &passphraseOnce{ask: func(key string) ([]byte, error) {
		user, host, _ := strings.Cut(key, "@")
		return askPassword(user, host)
	}}
	perHost := func(user, host string) ([]byte, error) { return pw.get(user + "@" + host) }
	if o, err = cf.options(a, pass.get, perHost); err != nil {
		return nil, remote.Options{}, nil, err
	}
	for _, t := range ts {
		cf.warnInsecure(a, t)
	}
	return ts, o, func() { pass.forget(); pw.forget() }, nil
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
// asking for key passphrases and askPw for a login password (unless
// --env-password gives it). Host-key flags that do not go together are a
// usage error.
func (cf *connFlags) options(a *app, ask remote.PassphraseFunc, askPw remote.PasswordFunc) (remote.Options, error) {
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
	auth := remote.Auth{IdentityFiles: cf.identities, Passphrase: ask, Password: askPw, PasswordFrom: "the prompt"}
	if cf.envPassword {
		pw, err := envPassword()
		if err != nil {
			return remote.Options{}, err
		}
		auth.Password, auth.PasswordFrom = pw, "$SSHPASS"
	}
	return remote.Options{
		HostKey:   remote.HostKeyPolicy{Pin: cf.hostKey, KnownHosts: cf.knownHosts, AcceptNew: cf.acceptNew, InsecureIgnore: cf.insecure},
		Auth:      auth,
		SSHConfig: cfg,
		Log:       a.log,
		Timeout:   cf.timeout,
		NoSudo:    cf.noSudo,
	}, nil
}

// envPassword takes the login password out of $SSHPASS (--env-password,
// as sshpass -e reads it) and out of the environment, so no command fleet
// starts inherits it.
func envPassword() (remote.PasswordFunc, error) {
	v, ok := os.LookupEnv("SSHPASS")
	if !ok || v == "" {
		return nil, usagef("--env-password: SSHPASS is not set\nhint: export SSHPASS with the host's login password first (read -rs SSHPASS; export SSHPASS)")
	}
	os.Unsetenv("SSHPASS")
	pass := []byte(v)
	return func(user, host string) ([]byte, error) { return bytes.Clone(pass), nil }, nil
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

// askPassphrase asks for a key's passphrase, and askPassword for a login
// password; variables so tests can answer instead of a terminal.
var (
	askPassphrase remote.PassphraseFunc = terminalPassphrase
	askPassword   remote.PasswordFunc   = terminalPassword
)

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
	return readTerminal("Enter passphrase for "+file+": ", "passphrase")
}

// terminalPassword asks for user's login password at host on the
// controlling terminal.
func terminalPassword(user, host string) ([]byte, error) {
	return readTerminal(user+"@"+host+"'s password: ", "password")
}

// readTerminal prints prompt on /dev/tty and reads a line without echo.
func readTerminal(prompt, what string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", remote.ErrNoTerminal, err)
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, remote.ErrNoTerminal
	}
	fmt.Fprint(tty, prompt)
	pass, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(pass) == 0 {
		return nil, errors.New("empty " + what)
	}
	return pass, nil
}
