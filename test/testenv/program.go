package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Program is a [TB] for a plain program, so that it can use the test
// helpers (boot a rig VM, set up the example fleet) outside `go test`.
// [Program.Run] runs the program's body; Fatal and Fatalf end the body
// (they must be called from its goroutine, as with testing.T), Skipf is
// fatal too (a program cannot skip what it was asked to do), and the
// cleanups run, last registered first, when the body ends or the
// context is cancelled (Ctrl-C), so no VM, sshd or agent outlives it.
type Program struct {
	name string
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	fatal    error
}

// NewProgram is a Program named name (the prefix of its temporary
// directories) that writes Logf and Errorf lines to log (nil: discard).
func NewProgram(name string, log io.Writer) *Program {
	if log == nil {
		log = io.Discard
	}
	return &Program{name: name, log: log}
}

// fatalExit is the panic value of Fatal, recovered by Run.
type fatalExit struct{}

// Run runs body with p as its TB and returns its error, the message of
// a Fatal call, or ctx's error if ctx ends first; p's cleanups have run
// when Run returns.
func (p *Program) Run(ctx context.Context, body func(ctx context.Context, t TB) error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalExit); !ok {
					panic(r)
				}
				p.mu.Lock()
				err := p.fatal
				p.mu.Unlock()
				done <- err
			}
		}()
		done <- body(ctx, p)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.runCleanups()
	if err == nil && p.Failed() {
		err = errors.New(p.name + " failed")
	}
	return err
}

func (p *Program) runCleanups() {
	for {
		p.mu.Lock()
		n := len(p.cleanups)
		if n == 0 {
			p.mu.Unlock()
			return
		}
		f := p.cleanups[n-1]
		p.cleanups = p.cleanups[:n-1]
		p.mu.Unlock()
		f()
	}
}

// Helper does nothing: a program has no test frames to hide.
func (p *Program) Helper() {}

// Logf writes a line to the program's log.
func (p *Program) Logf(format string, args ...any) {
	fmt.Fprintf(p.log, format+"\n", args...)
}

// Errorf logs a line and marks the program failed; it goes on.
func (p *Program) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	p.Logf(format, args...)
}

// Fatal ends the body with an error made of args, as fmt.Sprint would.
func (p *Program) Fatal(args ...any) { p.stop(errors.New(fmt.Sprint(args...))) }

// Fatalf ends the body with an error formatted as fmt.Sprintf would.
func (p *Program) Fatalf(format string, args ...any) { p.stop(fmt.Errorf(format, args...)) }

// Skipf ends the body: what a test may skip, a program must do.
func (p *Program) Skipf(format string, args ...any) {
	p.stop(fmt.Errorf("cannot run: "+format, args...))
}

func (p *Program) stop(err error) {
	p.mu.Lock()
	p.failed = true
	if p.fatal == nil {
		p.fatal = err
	}
	p.mu.Unlock()
	panic(fatalExit{})
}

// Cleanup registers f to run when the body ends.
func (p *Program) Cleanup(f func()) {
	p.mu.Lock()
	p.cleanups = append(p.cleanups, f)
	p.mu.Unlock()
}

// TempDir makes a new directory, removed when the body ends.
func (p *Program) TempDir() string {
	dir, err := os.MkdirTemp("", p.name+"-")
	if err != nil {
		p.Fatalf("temporary directory: %v", err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Failed reports whether Errorf or Fatal was called.
func (p *Program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}
