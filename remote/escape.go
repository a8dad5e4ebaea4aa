package remote

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Escape makes text that came from a remote safe to show on a terminal or
// write to a log: control characters (other than tab and newline), DEL,
// the C1 controls, Unicode's bidirectional overrides and bytes that are not
// UTF-8 become visible escapes (\x1b, \r, \u202e), so a host cannot clear
// the screen, retitle the window or fake a colored "ok" line in fleet's
// output. Tab and newline are kept: where they are structure (lines of a
// log, columns), callers split on them first. Text that needs no escaping
// is returned as it is. Every string fleet shows from a remote goes through
// it: an [ExitError]'s stderr, logged command output and facts fields.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case !needsEscape(r, n):
			b.WriteString(s[i : i+n])
		case r == utf8.RuneError:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether the rune r, n bytes long in its input, must
// not reach a terminal as it is.
func needsEscape(r rune, n int) bool {
	switch {
	case r == utf8.RuneError && n <= 1: // not UTF-8
		return true
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r == 0x7f: // C0 controls and DEL: ESC starts every sequence
		return true
	case r >= 0x80 && r <= 0x9f: // C1 controls: CSI (0x9b) and OSC (0x9d) work alone on some terminals
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides and isolates
		return true
	}
	return false
}
