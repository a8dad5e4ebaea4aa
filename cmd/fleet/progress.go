package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/provision"
)

// showProgress draws an install's progress on stderr when stderr is a
// terminal: one status line under the log, redrawn in place (see
// statusLine). It wires o's hooks and the log through it and returns what
// ends it. When stderr is not a terminal it changes nothing: the log lines
// are the progress.
func (a *app) showProgress(o *provision.Options) (done func()) {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	width := func() int {
		w, _, err := term.GetSize(int(f.Fd()))
		if err != nil {
			return 80
		}
		return w
	}
	s := newStatusLine(f, width, time.Now)
	a.log.SetOutput(s)
	o.OnPhase, o.OnStep = s.phase, s.step
	// What asks at the terminal asks with the status line out of the way.
	if c := o.DiskOptions.Confirm; c != nil {
		o.DiskOptions.Confirm = func(disks []disko.Target) bool { defer s.hold()(); return c(disks) }
	}
	if ask := o.Dial.Auth.Passphrase; ask != nil {
		o.Dial.Auth.Passphrase = func(file string) ([]byte, error) { defer s.hold()(); return ask(file) }
	}
	stop := make(chan struct{})
	go s.tick(time.Second, stop)
	return func() {
		close(stop)
		s.close()
		a.log.SetOutput(a.stderr)
	}
}

// statusLine is the last line of a terminal, kept for an install's
// progress: the phase, the step it is at as k of n, and how long the
// phase has been running. Whatever else is written through it (the log)
// goes above it: the line is cleared, the text written, the line drawn
// again.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	width func() int
	now   func() time.Time

	cur     string // the running phase, "" between phases
	since   time.Time
	st      provision.Step
	shown   bool // the line is on the screen
	holding bool // something asks at the terminal: draw nothing
}

func newStatusLine(w io.Writer, width func() int, now func() time.Time) *statusLine {
	return &statusLine{w: w, width: width, now: now}
}

// clearLine returns to the start of the line and erases it.
const clearLine = "\r\x1b[K"

// Write passes text (log lines) above the status line.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erase()
	n, err := s.w.Write(p)
	s.draw()
	return n, err
}

// phase follows the install's phases (Options.OnPhase).
func (s *statusLine) phase(ev provision.PhaseEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.State {
	case provision.PhaseStarted:
		s.cur, s.since, s.st = ev.Phase, s.now(), provision.Step{}
		s.draw()
	default:
		s.erase()
		s.cur = ""
	}
}

// step follows a phase's steps (Options.OnStep).
func (s *statusLine) step(st provision.Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.Phase != s.cur {
		return
	}
	s.st = st
	s.draw()
}

// tick redraws the line every interval (the time runs) until stop closes.
func (s *statusLine) tick(every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.draw()
			s.mu.Unlock()
		}
	}
}

// hold takes the line off the screen until the returned release.
func (s *statusLine) hold() (release func()) {
	s.mu.Lock()
	s.erase()
	s.holding = true
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.holding = false
		s.draw()
		s.mu.Unlock()
	}
}

// close takes the line off the screen for good.
func (s *statusLine) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erase()
	s.cur = ""
}

func (s *statusLine) erase() {
	if s.shown {
		io.WriteString(s.w, clearLine)
		s.shown = false
	}
}

// draw puts the line on the screen: "disko  step 3 of 12  0:42  mkfs.ext4 ...",
// cut to the terminal's width.
func (s *statusLine) draw() {
	if s.cur == "" || s.holding {
		return
	}
	line := s.text()
	if w := s.width(); w > 1 && len([]rune(line)) >= w {
		line = string([]rune(line)[:w-1])
	}
	io.WriteString(s.w, clearLine+line)
	s.shown = true
}

func (s *statusLine) text() string {
	el := s.now().Sub(s.since).Truncate(time.Second)
	parts := []string{s.cur}
	switch {
	case s.st.Total > 0:
		parts = append(parts, fmt.Sprintf("step %d of %d", s.st.Done, s.st.Total))
	case s.st.Done > 0:
		parts = append(parts, fmt.Sprintf("step %d", s.st.Done))
	}
	parts = append(parts, fmt.Sprintf("%d:%02d", int(el.Minutes()), int(el.Seconds())%60))
	if s.st.Name != "" {
		parts = append(parts, strings.Map(printable, s.st.Name))
	}
	return strings.Join(parts, "  ")
}

// printable keeps a step's name (a remote's output, perhaps) from moving
// the cursor or changing the terminal.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
		return ' '
	}
	return r
}
