package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// ErrPasswordRefused: the host refused the login password. It is never
// retried: one attempt per connection.
var ErrPasswordRefused = errors.New("password refused")

// ErrPasswordNeeded: every key was refused, the host takes a password, and
// fleet has none (no PasswordFunc).
var ErrPasswordNeeded = errors.New("the host wants a password")

// PasswordFunc returns the login password for user at host. It is called
// only when the host asks for a password (every key was refused first),
// at most once per connection; the caller wipes what it returns. It
// returns ErrNoTerminal (wrapped) when it cannot ask.
type PasswordFunc func(user, host string) ([]byte, error)

// passwordAuth answers the password and keyboard-interactive methods for
// one connection, with one password sent at most once per method, and
// remembers why it stopped.
type passwordAuth struct {
	get        PasswordFunc // nil: no password; asking is an error
	from       string       // where the password comes from, for errors
	user, host string
	keys       int                    // how many keys were offered before
	pause      func() (resume func()) // stops the handshake deadline while asking

	mu     sync.Mutex
	pass   []byte
	asked  bool
	sent   int   // times the password was sent
	offers bool  // the host asked for a password
	err    error // why authentication stopped here
}

// password is the ssh.PasswordCallback.
func (p *passwordAuth) password() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offers = true
	pass, err := p.load()
	if err != nil {
		return "", err
	}
	p.sent++
	return string(pass), nil
}

// challenge is the ssh.KeyboardInteractiveChallenge: every hidden question
// gets the password (PAM's "Password: "), once; a question that echoes
// (a user name, a one-time code) cannot be answered.
func (p *passwordAuth) challenge(name, instruction string, questions []string, echos []bool) ([]string, error) {
	if len(questions) == 0 {
		return []string{}, nil // an informational round
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offers = true
	answers := make([]string, len(questions))
	for i, q := range questions {
		if echos[i] {
			p.err = fmt.Errorf("%w: %s@%s asks %q, which fleet cannot answer\nhint: log in with a key, or with a password alone", ErrConnection, p.user, p.host, strings.TrimSpace(Escape(q)))
			return nil, p.err
		}
		if p.sent > 0 {
			// The same password again: the password method was refused
			// already, or the host asks twice. Never a second try.
			p.err = p.refused()
			return nil, p.err
		}
		pass, err := p.load()
		if err != nil {
			return nil, err
		}
		answers[i] = string(pass)
		p.sent++
	}
	return answers, nil
}

// load gets the password once, with the handshake deadline paused while
// the operator is asked.
func (p *passwordAuth) load() ([]byte, error) {
	if p.asked {
		if p.pass == nil {
			return nil, p.err
		}
		return p.pass, nil
	}
	p.asked = true
	if p.get == nil {
		p.err = fmt.Errorf("%w: %w: %s@%s refused every key offered (%d) and asks for a password\nhint: run fleet on a terminal to be asked for it, or put it in SSHPASS and pass --env-password", ErrConnection, ErrPasswordNeeded, p.user, p.host, p.keys)
		return nil, p.err
	}
	if p.pause != nil {
		defer p.pause()()
	}
	pass, err := p.get(p.user, p.host)
	if err != nil {
		if errors.Is(err, ErrNoTerminal) {
			p.err = fmt.Errorf("%w: %w: %s@%s asks for a password and there is no terminal to ask on\nhint: put it in SSHPASS and pass --env-password", ErrConnection, ErrPasswordNeeded, p.user, p.host)
		} else {
			p.err = fmt.Errorf("password for %s@%s: %w", p.user, p.host, err)
		}
		return nil, p.err
	}
	p.pass = pass
	return pass, nil
}

// refused is the error for a password the host did not take.
func (p *passwordAuth) refused() error {
	from := ""
	if p.from != "" {
		from = " from " + p.from
	}
	return fmt.Errorf("%w: %w: %s@%s refused the password%s\nhint: check the password set on the host (on the NixOS installer: the one given to passwd at its console)", ErrConnection, ErrPasswordRefused, p.user, p.host, from)
}

// failure explains why authentication ended without success, once the
// handshake is over; nil when passwords played no part.
func (p *passwordAuth) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.err != nil:
		return p.err
	case p.sent > 0:
		return p.refused()
	}
	return nil
}

// wipe clears the password from memory.
func (p *passwordAuth) wipe() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.pass)
	p.pass = nil
}

// deadline closes a connection whose handshake takes longer than its
// timeout, not counting the time spent waiting for the operator; a
// cancelled ctx closes it at once.
type deadline struct {
	mu      sync.Mutex
	d       time.Duration
	timer   *time.Timer
	paused  int
	expired bool
	unhook  func() bool
}

func startDeadline(ctx context.Context, d time.Duration, expire func()) *deadline {
	dl := &deadline{d: d}
	dl.timer = time.AfterFunc(d, func() {
		dl.mu.Lock()
		if dl.paused > 0 {
			dl.mu.Unlock()
			return
		}
		dl.expired = true
		dl.mu.Unlock()
		expire()
	})
	dl.unhook = context.AfterFunc(ctx, expire)
	return dl
}

// pause stops the clock until resume is called; the full timeout starts
// again then.
func (dl *deadline) pause() (resume func()) {
	dl.mu.Lock()
	dl.paused++
	dl.timer.Stop()
	dl.mu.Unlock()
	return func() {
		dl.mu.Lock()
		defer dl.mu.Unlock()
		if dl.paused--; dl.paused == 0 && !dl.expired {
			dl.timer.Reset(dl.d)
		}
	}
}

// stop ends the deadline and reports whether it had expired.
func (dl *deadline) stop() bool {
	dl.unhook()
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.timer.Stop()
	dl.paused = 1 << 30 // a resume after this must not restart the clock
	return dl.expired
}
