package remote

import (
	"bytes"
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
	// of it being collected in Result.Stdout.
	Stdout io.Writer
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
	Stdout []byte // empty when Cmd.Stdout was set
	Stderr []byte // the whole stderr, as produced
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
	Stderr string // the last lines of its stderr
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", e.Cmd)
	if e.Code == -1 && e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exit status %d", e.Code)
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, ": %s", e.Stderr)
	}
	return b.String()
}

// stderrTailLines is how much of a failed command's stderr goes into its error.
const stderrTailLines = 8

// Tail returns the last n non-empty lines of b, joined by "; " so an error
// stays one line per command.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append(keep, l)
		}
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return strings.Join(keep, "; ")
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
// process group, then SIGKILL after a grace period.
func (l *Local) Run(ctx context.Context, c Cmd) (*Result, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("run: empty command")
	}
	logger := withPhase(ctx, l.Log, "local")
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = killGrace
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Stdin = c.Stdin
	var stdout, stderr bytes.Buffer
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	} else {
		cmd.Stdout = &stdout
	}
	cmd.Stderr = io.Writer(&stderr)
	if logger != nil && !c.Quiet {
		lw := newLineLogger(logger)
		defer lw.Flush()
		cmd.Stderr = io.MultiWriter(&stderr, lw)
	}
	if logger != nil {
		logger.Debug("run", "cmd", c.display())
	}
	err := cmd.Run()
	res := &Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w", c.display(), ctx.Err())
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		ee := &ExitError{Host: l.Host(), Cmd: c.display(), Code: xe.ExitCode(), Stderr: Tail(stderr.Bytes(), stderrTailLines)}
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
