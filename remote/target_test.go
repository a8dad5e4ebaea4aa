package remote

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
	}{
		{"root@10.0.0.5", Target{User: "root", Host: "10.0.0.5"}},
		{"root@10.0.0.5:2222", Target{User: "root", Host: "10.0.0.5", Port: 2222}},
		{"10.0.0.5", Target{Host: "10.0.0.5"}},
		{"nas", Target{Host: "nas"}},
		{"nas:22", Target{Host: "nas", Port: 22}},
		{"ssh://root@nas.lan:2222", Target{User: "root", Host: "nas.lan", Port: 2222}},
		{"ssh://nas.lan", Target{Host: "nas.lan"}},
		{"ssh://root@[fd00::5]:22", Target{User: "root", Host: "fd00::5", Port: 22}},
		{"root@[fd00::5]:2222", Target{User: "root", Host: "fd00::5", Port: 2222}},
		{"[fd00::5]", Target{Host: "fd00::5"}},
		{"fd00::5", Target{Host: "fd00::5"}},
	} {
		got, err := ParseTarget(tc.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if back, err := ParseTarget(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q via %q = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseTargetMalformed(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"@host", "empty user before @"},
		{"root@", "no host"},
		{"root@host:", "empty port"},
		{"root@host:0", `port "0" is not a number from 1 to 65535`},
		{"root@host:65536", `port "65536" is not a number from 1 to 65535`},
		{"root@host:ssh", `port "ssh" is not a number from 1 to 65535`},
		{"root@[fd00::5", "missing ] after IPv6 address"},
		{"root@[nas]:22", "not an IPv6 address inside [ ]"},
		{"root@[fd00::5]x", "unexpected text after ]"},
		{"root@fd00::5:22:x", "an IPv6 address with a port needs brackets: [addr]:port"},
		{"root@host/path", "contains a space or one of / ? #"},
		{"root@ho st", "contains a space or one of / ? #"},
		{"ssh://root@host/x", "an ssh:// target has no path, query or fragment"},
		{"ssh://root:pw@host", "passwords in targets are not supported"},
		{"ssh://root@host:99999", `port "99999" is not a number from 1 to 65535`},
		{"ssh://", "no host"},
		{"ssh://]0", "host contains @ or brackets"}, // found by FuzzParseTarget
		{"ro:ot@host", "user contains @, : or brackets"},
		{"a@b@host", "user contains @, : or brackets"},
	} {
		_, err := ParseTarget(tc.in)
		if !errors.Is(err, ErrBadTarget) {
			t.Errorf("ParseTarget(%q) = %v, want ErrBadTarget", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), ": "+tc.why+"\n") {
			t.Errorf("ParseTarget(%q) error %q does not say %q", tc.in, err, tc.why)
		}
		if !strings.Contains(err.Error(), "hint: write it like root@10.0.0.5") {
			t.Errorf("ParseTarget(%q) error %q has no example", tc.in, err)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"root@10.0.0.5:22", "ssh://u@[::1]:2", "[fe80::1]", "nas", "@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			return
		}
		if tg.Host == "" || tg.Port < 0 || tg.Port > 65535 {
			t.Fatalf("ParseTarget(%q) = %+v", s, tg)
		}
		back, err := ParseTarget(tg.String())
		if err != nil || back != tg {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, tg.String(), back, err)
		}
	})
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":            "''",
		"plain":       "plain",
		"/dev/vda1":   "/dev/vda1",
		"a b":         "'a b'",
		"it's":        `'it'\''s'`,
		"$(rm -rf /)": "'$(rm -rf /)'",
	} {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
