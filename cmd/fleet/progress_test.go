package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/provision"
)

// fakeTerminal is the status line's terminal: what was written to it,
// and a clock the test moves.
type fakeTerminal struct {
	out   bytes.Buffer
	clock time.Time
	width int
}

func newFakeTerminal(width int) (*fakeTerminal, *statusLine) {
	ft := &fakeTerminal{clock: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), width: width}
	return ft, newStatusLine(&ft.out, func() int { return ft.width }, func() time.Time { return ft.clock })
}

// written returns what was written since the last call, with the
// erase-line sequence spelled out.
func (ft *fakeTerminal) written() string {
	s := strings.ReplaceAll(ft.out.String(), clearLine, "<CLR>")
	ft.out.Reset()
	return s
}

// TestStatusLineOnATerminal draws an install's progress on a fake
// terminal: the phase, its step as k of n and the phase's time on one
// line, redrawn in place; log lines go above it; nothing is drawn
// between phases or while something asks at the terminal.
func TestStatusLineOnATerminal(t *testing.T) {
	ft, s := newFakeTerminal(80)
	for _, c := range []struct {
		what string
		do   func()
		want string
	}{{
		what: "a phase starts",
		do:   func() { s.phase(provision.PhaseEvent{Phase: "disko", State: provision.PhaseStarted}) },
		want: "<CLR>disko  0:00",
	}, {
		what: "a step of a known count",
		do:   func() { s.step(provision.Step{Phase: "disko", Done: 3, Total: 12, Name: "mkfs.ext4 /dev/vda2"}) },
		want: "<CLR>disko  step 3 of 12  0:00  mkfs.ext4 /dev/vda2",
	}, {
		what: "the clock runs, a tick redraws",
		do:   func() { ft.clock = ft.clock.Add(72 * time.Second); s.draw() },
		want: "<CLR>disko  step 3 of 12  1:12  mkfs.ext4 /dev/vda2",
	}, {
		what: "a log line goes above the line",
		do:   func() { s.Write([]byte("12:01:12 INFO step finished action=mkfs\n")) },
		want: "<CLR>12:01:12 INFO step finished action=mkfs\n<CLR>disko  step 3 of 12  1:12  mkfs.ext4 /dev/vda2",
	}, {
		what: "another phase's step is not this one's",
		do:   func() { s.step(provision.Step{Phase: "stage", Done: 1, Total: 2}) },
		want: "",
	}, {
		what: "something asks at the terminal",
		do: func() {
			release := s.hold()
			s.step(provision.Step{Phase: "disko", Done: 4, Total: 12, Name: "mount"})
			ft.out.WriteString("<asked>")
			release()
		},
		want: "<CLR><asked><CLR>disko  step 4 of 12  1:12  mount",
	}, {
		what: "the phase ends: the line goes",
		do:   func() { s.phase(provision.PhaseEvent{Phase: "disko", State: provision.PhaseFinished}) },
		want: "<CLR>",
	}, {
		what: "between phases, log lines are plain",
		do:   func() { s.Write([]byte("12:01:13 INFO finished phase=disko\n")); s.draw() },
		want: "12:01:13 INFO finished phase=disko\n",
	}, {
		what: "a step of no known count; a remote's control bytes are not drawn",
		do: func() {
			s.phase(provision.PhaseEvent{Phase: "install", State: provision.PhaseStarted})
			s.step(provision.Step{Phase: "install", Done: 7, Name: "building \x1b]0;pwned\x07'/nix/store/x'"})
		},
		want: "<CLR>install  0:00<CLR>install  step 7  0:00  building  ]0;pwned '/nix/store/x'",
	}, {
		what: "a narrow terminal cuts the line",
		do:   func() { ft.width = 20; s.draw() },
		want: "<CLR>install  step 7  0:",
	}, {
		what: "the end takes the line away",
		do:   func() { s.close() },
		want: "<CLR>",
	}} {
		c.do()
		if got := ft.written(); got != c.want {
			t.Errorf("%s: wrote %q, want %q", c.what, got, c.want)
		}
	}
}

// TestNoStatusLineWithoutATerminal: with stderr not a terminal (a file, a
// pipe, a buffer), no hook is set and the log writes where it did.
func TestNoStatusLineWithoutATerminal(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, w := range []io.Writer{&bytes.Buffer{}, f} {
		a := &app{stderr: w, log: log.New(w)}
		var o provision.Options
		done := a.showProgress(&o)
		if o.OnPhase != nil || o.OnStep != nil {
			t.Fatalf("%T: hooks set", w)
		}
		a.log.Info("started", "phase", "stage")
		done()
	}
	b, _ := os.ReadFile(f.Name())
	if !strings.HasSuffix(string(b), "INFO started phase=stage\n") || strings.ContainsAny(string(b), "\r\x1b") {
		t.Fatalf("the log in a file: %q", b)
	}
}
