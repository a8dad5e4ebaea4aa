package remote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/log"
)

// ErrOutputTooLarge is returned when a command prints more on stdout than
// its [Cmd.MaxStdout]: the command is stopped and what it printed past the
// limit is dropped, so a host cannot make fleet's memory grow with its
// output.
var ErrOutputTooLarge = errors.New("command output too large")

// DefaultMaxStdout is how much of a command's stdout is kept when
// Cmd.MaxStdout is 0: far more than any output fleet parses (facts, JSON
// from nix, scan results), small enough that a fan-out to many hosts stays
// bounded.
const DefaultMaxStdout = 4 << 20

// stderrKeep is how much of the end of a command's stderr is kept (for
// Result.Stderr and the error's last lines); the rest is only logged, as
// it streams.
const stderrKeep = 64 << 10

// stderrTailLines is how many lines of stderr an [ExitError] keeps, and
// stderrLineMax how long each may be before it is cut.
const (
	stderrTailLines = 8
	stderrLineMax   = 512
)

// Tail returns the last n non-empty lines of b, oldest first, trimmed,
// escaped with [Escape] and each cut at 512 bytes: remote output made fit
// for an error message ([ExitError.Stderr] holds this).
func Tail(b []byte, n int) []string {
	var keep []string
	rest := bytes.TrimRight(b, "\n")
	for len(rest) > 0 && len(keep) < n {
		var line []byte
		if i := bytes.LastIndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[i+1:], rest[:i]
		} else {
			line, rest = rest, nil
		}
		l := strings.TrimSpace(string(line))
		if l == "" {
			continue
		}
		cut := ""
		if len(l) > stderrLineMax {
			l, cut = l[:stderrLineMax], "..."
		}
		keep = append(keep, Escape(l)+cut)
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return keep
}

// capBuffer collects up to max bytes. Past that it keeps accepting writes
// and drops them (so the host can flush and report the command's end while
// it is being stopped), and calls over once: over stops the command.
type capBuffer struct {
	mu   sync.Mutex
	b    []byte
	max  int
	over func()
	hit  bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hit {
		return len(p), nil
	}
	take := p
	if room := c.max - len(c.b); len(p) > room {
		take = p[:room]
		c.hit = true
	}
	if need := len(c.b) + len(take); need > cap(c.b) {
		// Grow by doubling, but never past the limit.
		nb := make([]byte, len(c.b), min(max(2*cap(c.b), need, 4096), c.max))
		copy(nb, c.b)
		c.b = nb
	}
	c.b = append(c.b, take...)
	if c.hit && c.over != nil {
		c.over()
	}
	return len(p), nil
}

func (c *capBuffer) bytes() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b, c.hit
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	if len(t.b)+len(p) > 2*t.max {
		// Slide the last bytes to the front: memory stays within 2*max.
		keep := t.max - len(p)
		copy(t.b, t.b[len(t.b)-keep:])
		t.b = t.b[:keep]
	}
	t.b = append(t.b, p...)
	return n, nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > t.max {
		return bytes.Clone(t.b[len(t.b)-t.max:])
	}
	return bytes.Clone(t.b)
}

// output is where a running command's stdout and stderr go, the same for
// [Local] and [Client]: stdout to the caller's writer or into a capped
// buffer, stderr into a bounded tail and, line by line and escaped, into
// the debug log.
type output struct {
	cmd    Cmd
	stdout *capBuffer // nil when cmd.Stdout is set
	stderr *tailBuffer
	lw     *LineLogger
}

// newOutput prepares c's output; over is called once when stdout passes
// its limit (it should stop the command).
func newOutput(c Cmd, logger *log.Logger, over func()) *output {
	o := &output{cmd: c, stderr: &tailBuffer{max: stderrKeep}}
	if c.Stdout == nil {
		limit := c.MaxStdout
		if limit <= 0 {
			limit = DefaultMaxStdout
		}
		o.stdout = &capBuffer{max: int(min(limit, int64(^uint(0)>>1))), over: over}
	}
	if logger != nil && !c.Quiet {
		o.lw = newLineLogger(logger)
	}
	return o
}

func (o *output) stdoutWriter() io.Writer {
	if o.stdout == nil {
		return o.cmd.Stdout
	}
	return o.stdout
}

func (o *output) stderrWriter() io.Writer {
	if o.lw == nil {
		return o.stderr
	}
	return io.MultiWriter(o.stderr, o.lw)
}

// done flushes a last unterminated stderr line to the log.
func (o *output) done() {
	if o.lw != nil {
		o.lw.Flush()
	}
}

// result is what the command left: its (capped) stdout and stderr's tail.
func (o *output) result() *Result {
	r := &Result{Stderr: o.stderr.bytes()}
	if o.stdout != nil {
		r.Stdout, _ = o.stdout.bytes()
	}
	return r
}

// overflowed reports whether stdout passed its limit.
func (o *output) overflowed() bool {
	if o.stdout == nil {
		return false
	}
	_, hit := o.stdout.bytes()
	return hit
}

// tooLarge returns ErrOutputTooLarge, wrapped with what and where, when
// stdout passed its limit; else nil.
func (o *output) tooLarge(host string) error {
	if !o.overflowed() {
		return nil
	}
	return fmt.Errorf("%s on %s: %w: it printed more than %s on stdout, and was stopped\nhint: fleet reads this command's output; check what on %s prints so much (a shell profile, a wrapper around the command)",
		o.cmd.display(), host, ErrOutputTooLarge, humanBytes(int64(o.stdout.max)), host)
}

// exitError is the ExitError for a command that ran and failed.
func (o *output) exitError(host string, code int, signal string) *ExitError {
	return &ExitError{Host: host, Cmd: o.cmd.display(), Code: code, Signal: signal, Stderr: Tail(o.stderr.bytes(), stderrTailLines)}
}

// humanBytes is n in binary units ("4 MiB", "1.5 GiB").
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
