package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"
	"golang.org/x/crypto/ssh"
)

// ErrConnection marks a failure to reach or authenticate to a host (as
// opposed to a command failing on it).
var ErrConnection = errors.New("ssh connection failed")

// Options configure Dial.
type Options struct {
	HostKey   HostKeyPolicy
	Auth      Auth
	SSHConfig *SSHConfig // nil: none
	Log       *log.Logger
	// Timeout bounds connecting and the SSH handshake (default 20s).
	Timeout time.Duration
	// KeepAlive is the interval of keepalive requests (default 15s); after
	// 3 unanswered ones the connection is closed and commands fail.
	KeepAlive time.Duration
	// NoSudo runs commands as the login user even when it is not root.
	// By default a login that is not root (the NixOS installer's nixos)
	// runs every command, uploads included, through `sudo -n`, checked
	// once when connecting ([ErrNoSudo] when it does not work).
	NoSudo bool
}

// Client is one verified SSH connection to a target; commands and uploads
// are sessions over it. It implements Runner.
type Client struct {
	conn     *ssh.Client
	jumps    []*ssh.Client // ProxyJump hops, innermost last
	endpoint Endpoint
	hostKey  ssh.PublicKey
	recorded string // known_hosts file a new key was added to ("" if none)
	log      *log.Logger
	sudo     bool // commands run through sudo -n
	done     chan struct{}
	once     sync.Once

	sessions atomic.Int64
}

// opened counts SSH connections made by this process (jump hops included),
// for the install summary's "connections opened".
var opened atomic.Int64

// ConnectionsOpened returns how many SSH connections this process opened.
func ConnectionsOpened() int64 { return opened.Load() }

// Dial resolves target through ssh_config, connects (through ProxyJump hops
// if configured), verifies the host key, authenticates and returns the client.
func Dial(ctx context.Context, target Target, o Options) (*Client, error) {
	ep, err := Resolve(target, o.SSHConfig)
	if err != nil {
		return nil, err
	}
	return DialEndpoint(ctx, ep, o)
}

// DialEndpoint is Dial for an already resolved endpoint.
func DialEndpoint(ctx context.Context, ep Endpoint, o Options) (*Client, error) {
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 15 * time.Second
	}
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			jumps[i].Close()
		}
	}
	var via *ssh.Client
	for _, hop := range ep.ProxyJump {
		ht, err := ParseTarget(strings.TrimSpace(hop))
		if err != nil {
			closeJumps()
			return nil, fmt.Errorf("ProxyJump %q: %w", hop, err)
		}
		hep, err := Resolve(ht, o.SSHConfig)
		if err != nil {
			closeJumps()
			return nil, err
		}
		hep.ProxyJump = nil
		// A jump host's key is checked against known_hosts (or accept-new);
		// a pin names the final target only.
		ho := o
		ho.HostKey.Pin = ""
		c, _, _, err := handshake(ctx, hep, ho, via)
		if err != nil {
			closeJumps()
			return nil, fmt.Errorf("jump host %s: %w", hop, err)
		}
		jumps = append(jumps, c)
		via = c
	}
	conn, key, added, err := handshake(ctx, ep, o, via)
	if err != nil {
		closeJumps()
		return nil, err
	}
	c := &Client{conn: conn, jumps: jumps, endpoint: ep, hostKey: key, recorded: added, log: o.Log, done: make(chan struct{})}
	if added != "" && o.Log != nil {
		o.Log.Warn("trusted new host key", "host", ep.KnownHostsName(), "fingerprint", ssh.FingerprintSHA256(key), "file", added)
	}
	go c.keepalive(o.KeepAlive)
	if !o.NoSudo && ep.User != "root" {
		if err := c.setupSudo(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// handshake opens one SSH connection to ep, directly or through via.
func handshake(ctx context.Context, ep Endpoint, o Options, via *ssh.Client) (*ssh.Client, ssh.PublicKey, string, error) {
	pol := o.HostKey
	if pol.KnownHosts == nil && ep.KnownHosts != nil {
		pol.KnownHosts = ep.KnownHosts
	}
	if ep.StrictHostKey == "accept-new" {
		pol.AcceptNew = true
	}
	hk := &hostKeyChecker{policy: pol, name: ep.KnownHostsName()}
	cb, algos, err := hk.callback()
	if err != nil {
		return nil, nil, "", err
	}
	creds, err := o.Auth.load(ep)
	if err != nil {
		return nil, nil, "", err
	}
	defer creds.Close()
	cfg := &ssh.ClientConfig{
		User:              ep.User,
		Auth:              creds.authMethods(),
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           o.Timeout,
	}
	dctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var raw net.Conn
	if via != nil {
		raw, err = via.DialContext(dctx, "tcp", ep.Addr())
	} else {
		var d net.Dialer
		raw, err = d.DialContext(dctx, "tcp", ep.Addr())
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, "", ctx.Err()
		}
		return nil, nil, "", fmt.Errorf("%w: connect to %s: %w\nhint: is the host up and sshd listening on port %d?", ErrConnection, ep.Addr(), err, ep.Port)
	}
	// The handshake has no context: bound it by closing the socket. The
	// time the operator takes to type a password or passphrase does not
	// count.
	dl := startDeadline(ctx, o.Timeout, func() { raw.Close() })
	creds.setPause(dl.pause)
	sc, chans, reqs, err := ssh.NewClientConn(raw, ep.Addr(), cfg)
	expired := dl.stop()
	if err != nil {
		raw.Close()
		switch {
		case errors.Is(err, ErrHostKeyMismatch), errors.Is(err, ErrUnknownHost):
			return nil, nil, "", unwrapHandshake(err)
		case creds.signErr != nil:
			return nil, nil, "", creds.signErr
		case ctx.Err() != nil:
			return nil, nil, "", ctx.Err()
		case expired:
			return nil, nil, "", fmt.Errorf("%w: %s: no SSH handshake within %s", ErrConnection, ep.Addr(), o.Timeout)
		case creds.pw.failure() != nil:
			return nil, nil, "", creds.pw.failure()
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, nil, "", fmt.Errorf("%w: %s@%s refused every key offered (%d)\nhint: authorize your key in the host's authorized_keys, or pass -i KEY", ErrConnection, ep.User, ep.Addr(), len(creds.signers))
		}
		return nil, nil, "", fmt.Errorf("%w: %s: %w", ErrConnection, ep.Addr(), err)
	}
	opened.Add(1)
	hk.mu.Lock()
	key, added := hk.seen, hk.added
	hk.mu.Unlock()
	return ssh.NewClient(sc, chans, reqs), key, added, nil
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed:" prefix from our
// own host-key errors, keeping them errors.Is-able.
func unwrapHandshake(err error) error {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), ErrHostKeyMismatch.Error()) || strings.HasPrefix(e.Error(), ErrUnknownHost.Error()) {
			return e
		}
	}
	return err
}

func (c *Client) keepalive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		select {
		case err := <-res:
			if err != nil {
				return // connection gone; sessions see it
			}
			missed = 0
		case <-time.After(every):
			missed++
			if missed >= 3 {
				if c.log != nil {
					c.log.Error("connection lost: no keepalive answer", "host", c.Host())
				}
				c.conn.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

// Host implements Runner: the target as resolved.
func (c *Client) Host() string { return c.endpoint.KnownHostsName() }

// Endpoint is what the client connected to.
func (c *Client) Endpoint() Endpoint { return c.endpoint }

// HostKey is the key the host presented (and that was verified).
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// RecordedIn names the known_hosts file a first-seen key was added to, or "".
func (c *Client) RecordedIn() string { return c.recorded }

// SSH exposes the underlying connection (for forwarded agents).
func (c *Client) SSH() *ssh.Client { return c.conn }

// Close closes the connection and every jump hop.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.done) })
	err := c.conn.Close()
	for i := len(c.jumps) - 1; i >= 0; i-- {
		c.jumps[i].Close()
	}
	return err
}

// Wait blocks until the connection ends (the host rebooted, say).
func (c *Client) Wait() error { return c.conn.Wait() }

// SessionHook, when set on a Cmd run through RunWith, is called with the
// new session before the command starts (to request agent forwarding).
type SessionHook func(*ssh.Session) error

// Run implements Runner over SSH: the command runs in its own session,
// quoted for the remote shell, exec'd so signals reach it. Cancelling ctx
// sends SIGTERM, then closes the session after a grace period.
func (c *Client) Run(ctx context.Context, cmd Cmd) (*Result, error) {
	return c.RunWith(ctx, cmd, nil)
}

// RunWith is Run with a hook on the session before the command starts.
// A hook marks a session that uses a forwarded agent: when commands run
// through sudo, its SSH_AUTH_SOCK is passed to the command.
func (c *Client) RunWith(ctx context.Context, cmd Cmd, hook SessionHook) (*Result, error) {
	if len(cmd.Args) == 0 {
		return nil, errors.New("run: empty command")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.display(), err)
	}
	logger := withPhase(ctx, c.log, c.Host())
	sess, err := c.conn.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%w: open session on %s: %w", ErrConnection, c.Host(), err)
	}
	defer sess.Close()
	c.sessions.Add(1)
	if hook != nil {
		if err := hook(sess); err != nil {
			return nil, err
		}
	}
	// Stdout past its limit stops the command as cancelling would.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	out := newOutput(cmd, logger, stop)
	defer out.done()
	sess.Stdout = out.stdoutWriter()
	pid := &pidSniffer{w: out.stderrWriter(), found: make(chan int, 1)}
	sess.Stderr = pid
	if cmd.Stdin != nil {
		sess.Stdin = cmd.Stdin
	}
	if logger != nil {
		logger.Debug("run", "cmd", cmd.display())
	}
	if err := sess.Start(c.commandLine(cmd, hook != nil)); err != nil {
		return nil, fmt.Errorf("%w: start %s on %s: %w", ErrConnection, cmd.display(), c.Host(), err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err = <-waited:
	case <-runCtx.Done():
		// The pid line comes before any output: once stdout is past its
		// limit, a pid not seen yet never will be.
		pidWait := time.Second
		if out.overflowed() {
			pidWait = 100 * time.Millisecond
		}
		if !c.kill(pid, "TERM", pidWait) {
			// No pid to signal (the host ran something else than the
			// command line, a ForceCommand say): closing the session is
			// what is left, and the command's next write fails.
			sess.Close()
		}
		select {
		case err = <-waited:
		case <-time.After(killGrace):
			c.kill(pid, "KILL", 0)
			sess.Close()
			select {
			case <-waited:
			case <-time.After(killGrace):
			}
		}
		if tl := out.tooLarge(c.Host()); tl != nil {
			return out.result(), tl
		}
		return out.result(), fmt.Errorf("%s: %w", cmd.display(), ctx.Err())
	}
	res := out.result()
	if tl := out.tooLarge(c.Host()); tl != nil {
		return res, tl
	}
	if err == nil {
		return res, nil
	}
	var xe *ssh.ExitError
	if errors.As(err, &xe) {
		ee := out.exitError(c.Host(), xe.ExitStatus(), "")
		if xe.Signal() != "" {
			ee.Code, ee.Signal = -1, xe.Signal()
		}
		return res, ee
	}
	var xm *ssh.ExitMissingError
	if errors.As(err, &xm) || errors.Is(err, io.EOF) {
		return res, fmt.Errorf("%w: %s on %s: the connection dropped before the command finished", ErrConnection, cmd.display(), c.Host())
	}
	return res, fmt.Errorf("%s on %s: %w", cmd.display(), c.Host(), err)
}

// commandLine is what the login shell runs for cmd. sshd makes that shell
// a session and process-group leader; it reports its pid and execs the
// command, which keeps that pid, so the whole process group can be killed
// from another session (OpenSSH refuses "signal" requests for root
// logins). Every argument is quoted, so none is re-split or expanded.
func (c *Client) commandLine(cmd Cmd, agent bool) string {
	var b strings.Builder
	b.WriteString("echo " + pidMarker + "$$ >&2; exec ")
	env := ShellJoin(cmd.Env)
	if c.sudo {
		b.WriteString(sudoPrefix)
		if agent {
			// sudo resets the environment; the forwarded agent's socket
			// belongs to the login user, and root may use it.
			env = strings.TrimSpace(sudoAgentEnv + " " + env)
		}
	}
	if env != "" {
		b.WriteString("env " + env + " ")
	}
	b.WriteString(cmd.String())
	return b.String()
}

// Sessions counts the sessions opened on this connection.
func (c *Client) Sessions() int64 { return c.sessions.Load() }

// pidMarker starts the line the remote shell prints with its pid.
const pidMarker = "fleet-remote-pid:"

// pidSniffer takes the pid line off the front of a command's stderr and
// passes the rest through.
type pidSniffer struct {
	w     io.Writer
	buf   []byte
	done  bool
	found chan int
	pid   int
}

func (p *pidSniffer) Write(b []byte) (int, error) {
	if p.done {
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	i := bytes.IndexByte(p.buf, '\n')
	if i < 0 && len(p.buf) < 64 {
		return len(b), nil
	}
	p.done = true
	rest := p.buf
	if i >= 0 && bytes.HasPrefix(p.buf, []byte(pidMarker)) {
		fmt.Sscan(string(p.buf[len(pidMarker):i]), &p.pid)
		p.found <- p.pid
		rest = p.buf[i+1:]
	}
	p.buf = nil
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// kill signals the process group of a running command from a new session,
// waiting up to wait for its pid, and reports whether it could.
func (c *Client) kill(p *pidSniffer, sig string, wait time.Duration) bool {
	var pid int
	select {
	case pid = <-p.found:
		p.found <- pid // keep it for a second signal
	case <-time.After(wait):
		return false // never started, the connection is gone, or no pid line came
	}
	if pid <= 1 {
		return false
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return false
	}
	defer sess.Close()
	kill := "kill"
	if c.sudo {
		kill = sudoPrefix + "kill" // the command runs as root
	}
	return sess.Run(fmt.Sprintf("%s -%s -- -%d 2>/dev/null || %s -%s %d 2>/dev/null; true", kill, sig, pid, kill, sig, pid)) == nil
}
