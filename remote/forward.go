package remote

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// agentChannel is the channel type sshd opens back to the client when a
// program on the host connects to a forwarded agent socket.
const agentChannel = "auth-agent@openssh.com"

// ErrForwardRevoked is returned by a Forwarding's hook once it was revoked.
var ErrForwardRevoked = errors.New("agent forwarding revoked")

// Forwarding is an agent forwarded on chosen sessions of one connection.
//
// Forwarding is asked for per session: sessions started before the first
// session run with [Forwarding.Hook] have no SSH_AUTH_SOCK on the host.
// OpenSSH's sshd, though, accepts one forwarding request per connection
// and then exports the socket to every later session on it, so the scope
// is enforced here, in time: agent channels are not tied to a session in
// the SSH protocol, and a connection has one dispatcher that hands each
// channel to the newest Forwarding not yet revoked and rejects channels
// when there is none. [Forwarding.Revoke] closes every channel it serves,
// after which the socket on the host no longer answers (ssh-add -l fails)
// from any session. For a socket that disappears too, run the fetch on a
// connection of its own and close it afterwards.
type Forwarding struct {
	d     *dispatcher
	agent agent.Agent
	label string

	mu      sync.Mutex
	revoked bool
	chans   map[ssh.Channel]struct{}
	served  int
}

// dispatcher owns a connection's auth-agent channels: x/crypto lets a
// channel type be claimed only once per connection.
type dispatcher struct {
	mu        sync.Mutex
	active    []*Forwarding // newest last
	requested bool          // sshd was asked to forward on this connection
}

var (
	dispatchersMu sync.Mutex
	dispatchers   = map[*ssh.Client]*dispatcher{}
)

func dispatcherFor(conn *ssh.Client) *dispatcher {
	dispatchersMu.Lock()
	defer dispatchersMu.Unlock()
	if d, ok := dispatchers[conn]; ok {
		return d
	}
	d := &dispatcher{}
	dispatchers[conn] = d
	chans := conn.HandleChannelOpen(agentChannel)
	go func() {
		if chans != nil {
			for nc := range chans {
				d.serve(nc)
			}
		}
		// The connection is gone.
		dispatchersMu.Lock()
		delete(dispatchers, conn)
		dispatchersMu.Unlock()
	}()
	return d
}

func (d *dispatcher) serve(nc ssh.NewChannel) {
	d.mu.Lock()
	var f *Forwarding
	if n := len(d.active); n > 0 {
		f = d.active[n-1]
	}
	d.mu.Unlock()
	if f == nil {
		_ = nc.Reject(ssh.Prohibited, "no agent forwarded to this session")
		return
	}
	f.mu.Lock()
	if f.revoked {
		f.mu.Unlock()
		_ = nc.Reject(ssh.Prohibited, "agent forwarding revoked")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		f.mu.Unlock()
		return
	}
	f.chans[ch] = struct{}{}
	f.served++
	f.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	go func() {
		_ = agent.ServeAgent(f.agent, ch)
		ch.Close()
		f.mu.Lock()
		delete(f.chans, ch)
		f.mu.Unlock()
	}()
}

func (d *dispatcher) remove(f *Forwarding) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, g := range d.active {
		if g == f {
			d.active = append(d.active[:i], d.active[i+1:]...)
			return
		}
	}
}

// Forward starts serving a on this connection for the sessions run with
// the returned Forwarding's Hook; label names it in logs. Call Revoke when
// the sessions that need it are done. Pass an agent that allowlists keys
// (agentfwd.Agent), never the operator's agent itself.
func (c *Client) Forward(a agent.Agent, label string) *Forwarding {
	d := dispatcherFor(c.conn)
	f := &Forwarding{d: d, agent: a, label: label, chans: map[ssh.Channel]struct{}{}}
	d.mu.Lock()
	d.active = append(d.active, f)
	d.mu.Unlock()
	if c.log != nil {
		c.log.Debug("agent forwarding ready", "host", c.Host(), "for", label)
	}
	return f
}

// Hook requests agent forwarding on the session it is given (for RunWith).
func (f *Forwarding) Hook() SessionHook {
	return func(s *ssh.Session) error {
		f.mu.Lock()
		revoked := f.revoked
		f.mu.Unlock()
		if revoked {
			return fmt.Errorf("%s: %w", f.label, ErrForwardRevoked)
		}
		// sshd accepts one agent forwarding request per connection and
		// from then on exports SSH_AUTH_SOCK to every new session on it.
		f.d.mu.Lock()
		defer f.d.mu.Unlock()
		if f.d.requested {
			return nil
		}
		if err := agent.RequestAgentForwarding(s); err != nil {
			return fmt.Errorf("%w: request agent forwarding for %s: %w\nhint: the host's sshd may have AllowAgentForwarding no", ErrConnection, f.label, err)
		}
		f.d.requested = true
		return nil
	}
}

// Channels counts the agent connections served so far (each ssh or git
// run on the host that talked to the agent opens one).
func (f *Forwarding) Channels() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

// Revoke stops serving: new agent channels are rejected and the open ones
// closed. It is safe to call more than once.
func (f *Forwarding) Revoke() {
	f.d.remove(f)
	f.mu.Lock()
	f.revoked = true
	chans := make([]ssh.Channel, 0, len(f.chans))
	for ch := range f.chans {
		chans = append(chans, ch)
	}
	f.mu.Unlock()
	for _, ch := range chans {
		ch.Close()
	}
}
