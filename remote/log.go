package remote

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/charmbracelet/log"
)

// killGrace is how long a cancelled command has between SIGTERM and SIGKILL.
const killGrace = 3 * time.Second

type phaseKey struct{}

// WithPhase returns a context whose commands log with phase=name, so every
// line a command prints is attributed to the install phase that ran it.
func WithPhase(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, phaseKey{}, name)
}

// PhaseOf returns the phase set by WithPhase, or "".
func PhaseOf(ctx context.Context) string {
	s, _ := ctx.Value(phaseKey{}).(string)
	return s
}

// withPhase derives a logger with the host and phase fields for ctx.
func withPhase(ctx context.Context, l *log.Logger, host string) *log.Logger {
	if l == nil {
		return nil
	}
	kv := []any{"host", host}
	if p := PhaseOf(ctx); p != "" {
		kv = append(kv, "phase", p)
	}
	return l.With(kv...)
}

// LineLogger writes each complete line written to it as one log record at
// its level, with the logger's fields (host, phase): command output made
// into structured logs, streamed (a line longer than 64 KiB is logged in
// pieces) and escaped with [Escape].
type LineLogger struct {
	mu    sync.Mutex
	l     *log.Logger
	level log.Level
	buf   []byte
}

type lineLogger = LineLogger

func newLineLogger(l *log.Logger) *lineLogger { return &LineLogger{l: l, level: log.DebugLevel} }

// NewLineLogger returns a LineLogger logging at level with the host and
// phase of ctx as fields. Call Flush when the output ends.
func NewLineLogger(ctx context.Context, l *log.Logger, host string, level log.Level) *LineLogger {
	return &LineLogger{l: withPhase(ctx, l, host), level: level}
}

// Write implements io.Writer.
func (w *LineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimRight(w.buf[:i], "\r"); len(line) > 0 {
			w.l.Log(w.level, Escape(string(line)))
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a line without end: log what we have
		w.l.Log(w.level, Escape(string(w.buf)))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// Flush logs a last unterminated line.
func (w *LineLogger) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.l.Log(w.level, Escape(string(w.buf)))
		w.buf = w.buf[:0]
	}
}
