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

// lineLogger writes each complete line written to it as one debug record.
type lineLogger struct {
	mu  sync.Mutex
	l   *log.Logger
	buf []byte
}

func newLineLogger(l *log.Logger) *lineLogger { return &lineLogger{l: l} }

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimRight(w.buf[:i], "\r"); len(line) > 0 {
			w.l.Debug(string(line))
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a line without end: log what we have
		w.l.Debug(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

// Flush logs a last unterminated line.
func (w *lineLogger) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.l.Debug(string(w.buf))
		w.buf = w.buf[:0]
	}
}
