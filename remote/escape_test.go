package remote_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, ünïcode ✓", "plain text, ünïcode ✓"},
		{"tab\tand\nnewline", "tab\tand\nnewline"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"progress\roverwritten", `progress\roverwritten`},
		{"del\x7f nul\x00 bs\x08", `del\x7f nul\x00 bs\x08`},
		{"c1 csi \u009b31m", `c1 csi \u009b31m`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"bad utf-8 \xff\xfe", `bad utf-8 \xff\xfe`},
		{"", ""},
	} {
		if got := remote.Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// hostile is what a remote prints to take over the operator's terminal:
// a window title, a screen clear and a fake green "ok" line.
const hostile = `printf '\033]0;pwned\007\033[2J\033[H\033[32mok\033[0m everything is fine\n' >&2; printf 'csi\302\233m\r\n' >&2; exit 1`

// TestRemoteEscapeSequencesEscaped: escape sequences a real remote command
// prints on stderr reach neither fleet's error nor its log raw.
func TestRemoteEscapeSequencesEscaped(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	var logged bytes.Buffer
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
		Log:     log.NewWithOptions(&logged, log.Options{Level: log.DebugLevel}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, r := range []remote.Runner{c, &remote.Local{Log: log.NewWithOptions(&logged, log.Options{Level: log.DebugLevel})}} {
		_, err = r.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", hostile}, Label: "hostile"})
		var ee *remote.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: got %v", r.Host(), err)
		}
		want := []string{`\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[32mok\x1b[0m everything is fine`, `csi\u009bm`}
		if !slices.Equal(ee.Stderr, want) {
			t.Fatalf("%s: stderr %q, want %q", r.Host(), ee.Stderr, want)
		}
		if want := "hostile: exit status 1: " + strings.Join(want, "; "); err.Error() != want {
			t.Fatalf("%s: error %q, want %q", r.Host(), err, want)
		}
	}
	if strings.ContainsAny(logged.String(), "\x1b\x07\r\u009b") {
		t.Fatalf("raw control characters in the log:\n%q", logged.String())
	}
	if n := strings.Count(logged.String(), `\x1b[32mok\x1b[0m everything is fine`); n != 2 {
		t.Fatalf("the escaped line is logged %d times, want once per runner:\n%s", n, logged.String())
	}
}
