package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNoSudo: the login user is not root and cannot run commands through
// `sudo -n` (no sudo, or sudo wants a password).
var ErrNoSudo = errors.New("no passwordless sudo")

// sudoPrefix runs a command as root without ever prompting: a sudo that
// wants a password fails at once instead of waiting for a terminal. "--"
// ends sudo's options, so the command's own are never read as sudo's.
const sudoPrefix = "sudo -n -- "

// sudoAgentEnv passes the login shell's SSH_AUTH_SOCK (a forwarded agent)
// through sudo's environment reset, and nothing when it is unset.
const sudoAgentEnv = `${SSH_AUTH_SOCK:+"SSH_AUTH_SOCK=$SSH_AUTH_SOCK"}`

// sudoProbe prints "root" when the login user is root already, and
// otherwise checks that sudo -n works.
const sudoProbe = `if [ "$(id -u)" = 0 ]; then echo root; else exec sudo -n true; fi`

// Sudo reports whether commands run through `sudo -n` (the login user is
// not root).
func (c *Client) Sudo() bool { return c.sudo }

// setupSudo decides, once per connection, how commands gain root: not at
// all for a root login, through `sudo -n` otherwise, checked here so a
// host without passwordless sudo is refused before any command runs.
func (c *Client) setupSudo(ctx context.Context) error {
	res, err := c.Run(ctx, Cmd{Args: []string{"sh", "-c", sudoProbe}, Label: "check sudo -n"})
	if err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) {
			return err
		}
		why := "exit status " + fmt.Sprint(ee.Code)
		if len(ee.Stderr) > 0 {
			why = strings.Join(ee.Stderr, "; ")
		}
		user := c.endpoint.User
		return fmt.Errorf("%w: %s is not root on %s, and sudo -n true failed there: %s\nhint: give %s passwordless sudo on the host (the NixOS installer's nixos user has it) or log in as root; to run commands as %s instead (enough for fleet facts), pass --no-sudo", ErrNoSudo, user, c.endpoint.Addr(), why, user, user)
	}
	c.sudo = strings.TrimSpace(string(res.Stdout)) != "root"
	if c.sudo && c.log != nil {
		c.log.Debug("commands run through sudo -n", "host", c.Host(), "user", c.endpoint.User)
	}
	return nil
}
