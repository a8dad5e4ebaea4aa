package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
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
	t, err := remote.ParseTarget(cf.target)
	if err != nil {
		return t, remote.Options{}, usageError{err}
	}
	if cf.hostKey != "" && cf.acceptNew {
		return t, remote.Options{}, usagef("--host-key and --accept-new do not go together\nhint: a pinned key needs no trust on first use; drop --accept-new")
	}
	if cf.insecure && (cf.hostKey != "" || cf.acceptNew) {
		return t, remote.Options{}, usagef("--insecure-ignore-host-key cannot be combined with --host-key or --accept-new")
	}
	var cfg *remote.SSHConfig
	switch cf.sshConfig {
	case "none":
	case "":
		cfg, err = remote.LoadSSHConfig()
	default:
		if _, serr := os.Stat(cf.sshConfig); serr != nil {
			return t, remote.Options{}, usagef("--ssh-config %s: %v", cf.sshConfig, serr)
		}
		cfg, err = remote.LoadSSHConfig(cf.sshConfig)
	}
	if err != nil {
		return t, remote.Options{}, err
	}
	if cf.insecure {
		a.log.Warn("host key checking is OFF (--insecure-ignore-host-key): anyone on the network path can impersonate " + t.String() + " and receive what fleet sends")
	}
	return t, remote.Options{
		HostKey:   remote.HostKeyPolicy{Pin: cf.hostKey, KnownHosts: cf.knownHosts, AcceptNew: cf.acceptNew, InsecureIgnore: cf.insecure},
		Auth:      remote.Auth{IdentityFiles: cf.identities, Passphrase: terminalPassphrase},
		SSHConfig: cfg,
		Log:       a.log,
		Timeout:   cf.timeout,
	}, nil
}

// dial connects to the flags' target.
func (cf *connFlags) dial(ctx context.Context, a *app) (*remote.Client, error) {
	t, o, err := cf.resolve(a)
	if err != nil {
		return nil, err
	}
	c, err := remote.Dial(ctx, t, o)
	if err != nil {
		return nil, err
	}
	a.log.Debug("connected", "host", c.Host(), "fingerprint", fingerprint(c))
	return c, nil
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
