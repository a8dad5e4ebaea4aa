package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/charmbracelet/log"
)

// Cmd is one external command.
type Cmd struct {
	// Args is the argv; Args[0] is the program. Over SSH each argument is
	// quoted for the remote shell, so no argument is ever re-split.
	Args []string
	// Stdin is fed to the command; nil means empty input.
	Stdin io.Reader
	// Env holds extra KEY=VALUE pairs for the command.
	Env []string
	// Stdout, when set, receives the command's output as it comes instead
	// of it being collected in Result.Stdout (and MaxStdout does not apply).
	Stdout io.Writer
	// MaxStdout bounds how much stdout is collected in Result.Stdout; 0
	// means DefaultMaxStdout. A command printing more is stopped and fails
	// with ErrOutputTooLarge. Raise it for output that is legitimately
	// large (a file's content, a long listing).
	MaxStdout int64
	// Label, when set, names the command in logs and errors instead of
	// its whole argv (for long scripts).
	Label string
	// Quiet keeps the command's stderr lines out of the debug log (for
	// commands whose stderr may hold sensitive text).
	Quiet bool
}

// String is the command line as a shell would read it.
func (c Cmd) String() string { return ShellJoin(c.Args) }

// display names the command in logs and errors.
func (c Cmd) display() string {
	if c.Label != "" {
		return c.Label
	}
	return c.String()
}

// Result is what a finished command produced.
type Result struct {
	// Stdout is what the command printed, at most Cmd.MaxStdout bytes;
	// empty when Cmd.Stdout was set.
	Stdout []byte
	// Stderr is the last 64 KiB of what the command printed on stderr, as
	// produced: raw bytes from the host, to be escaped ([Escape]) before
	// they are shown.
	Stderr []byte
}

// Runner runs external commands somewhere: on a target over SSH ([Client])
// or on this machine ([Local]). Run returns an [*ExitError] when the
// command ran and failed; cancelling ctx stops the command.
type Runner interface {
	Run(ctx context.Context, c Cmd) (*Result, error)
	// Host names where commands run, for logs ("local" for this machine).
	Host() string
}

// ExitError is a command that ran and exited non-zero (or died of a signal).
type ExitError struct {
	Host   string
	Cmd    string
	Code   int    // exit status; -1 when killed by a signal
	Signal string // the signal's name when Code is -1
	// Stderr is the tail of the command's stderr: its last non-empty
	// lines (at most 8), oldest first, trimmed, escaped with [Escape] and
	// each cut at 512 bytes; empty when it printed nothing there.
	Stderr []string
}

// Error is one line: the command, its status and its stderr's last lines
// joined by "; ".
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", e.Cmd)
	if e.Code == -1 && e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exit status %d", e.Code)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(e.Stderr, "; "))
	}
	return b.String()
}

// StderrLine returns the first line of the stderr tail that contains
// sub, or "" when none does.
func (e *ExitError) StderrLine(sub string) string {
	for _, l := range e.Stderr {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// ShellJoin quotes args for a POSIX shell and joins them with spaces.
func ShellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// ShellQuote quotes s for a POSIX shell; plain words are left as they are.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%^", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Local runs commands on this machine.
type Local struct {
	Log *log.Logger // nil: no logging
}

// Host implements Runner.
func (l *Local) Host() string { return "local" }

// Run implements Runner. Cancelling ctx sends SIGTERM to the command's
// process group, then SIGKILL after a grace period; so does stdout passing
// c.MaxStdout.
func (l *Local) Run(ctx context.Context, c Cmd) (*Result, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("run: empty command")
	}
	logger := withPhase(ctx, l.Log, "local")
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := exec.CommandContext(runCtx, c.Args[0], c.Args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killGrace
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Stdin = c.Stdin
	out := newOutput(c, logger, stop)
	cmd.Stdout, cmd.Stderr = out.stdoutWriter(), out.stderrWriter()
	if logger != nil {
		logger.Debug("run", "cmd", c.display())
	}
	err := cmd.Run()
	out.done()
	res := out.result()
	if tl := out.tooLarge(l.Host()); tl != nil {
		return res, tl
	}
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w", c.display(), ctx.Err())
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		ee := out.exitError(l.Host(), xe.ExitCode(), "")
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ee.Code, ee.Signal = -1, ws.Signal().String()
		}
		return res, ee
	}
	return res, fmt.Errorf("%s: %w", c.display(), err)
}

// Output runs c on r and returns its stdout; a convenience for the many
// commands whose output is all that matters.
func Output(ctx context.Context, r Runner, args ...string) ([]byte, error) {
	res, err := r.Run(ctx, Cmd{Args: args})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}
