package remote

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadTarget is returned for a target string fleet cannot read.
var ErrBadTarget = errors.New("bad target")

// targetExample is shown with every malformed target.
const targetExample = "root@10.0.0.5, root@10.0.0.5:2222, ssh://root@[fd00::5]:22 or an alias from ~/.ssh/config"

// Target is where fleet connects, as the user wrote it. Empty fields are
// filled from ~/.ssh/config and defaults by [Resolve].
type Target struct {
	User string // "" when not given
	Host string // host name, address or ssh_config alias (IPv6 without brackets)
	Port int    // 0 when not given
}

// String renders the target the way it can be parsed back.
func (t Target) String() string {
	h := t.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if t.User != "" {
		h = t.User + "@" + h
	}
	if t.Port != 0 {
		h += ":" + strconv.Itoa(t.Port)
	}
	return h
}

// ParseTarget reads user@host, user@host:port, ssh://user@host:port,
// user@[v6addr]:port, [v6addr], a bare IPv6 address, or a bare host or alias.
func ParseTarget(s string) (Target, error) {
	bad := func(why string) (Target, error) {
		return Target{}, fmt.Errorf("%w %q: %s\nhint: write it like %s", ErrBadTarget, s, why, targetExample)
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty")
	}
	if strings.ContainsAny(s, " \t\n\r/?#") && !strings.HasPrefix(s, "ssh://") {
		return bad("contains a space or one of / ? #")
	}
	if strings.HasPrefix(s, "ssh://") {
		u, err := url.Parse(s)
		if err != nil {
			return bad("not an ssh:// URL")
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad("an ssh:// target has no path, query or fragment")
		}
		if _, hasPass := u.User.Password(); hasPass {
			return bad("passwords in targets are not supported")
		}
		t := Target{Host: u.Hostname()}
		if u.User != nil {
			t.User = u.User.Username()
		}
		if p := u.Port(); p != "" {
			port, err := parsePort(p)
			if err != nil {
				return bad(err.Error())
			}
			t.Port = port
		} else if strings.HasSuffix(u.Host, ":") {
			return bad("empty port")
		}
		if t.Host == "" {
			return bad("no host")
		}
		if u.User != nil && t.User == "" {
			return bad("empty user before @")
		}
		if strings.ContainsAny(t.User, "@:[]") {
			return bad("user contains @, : or brackets")
		}
		if strings.ContainsAny(t.Host, "[]@") || strings.Contains(t.Host, ":") && net.ParseIP(t.Host) == nil {
			return bad("host contains @ or brackets")
		}
		return t, nil
	}
	var t Target
	rest := s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.User, rest = s[:i], s[i+1:]
		if t.User == "" {
			return bad("empty user before @")
		}
		if strings.ContainsAny(t.User, "@:[]") {
			return bad("user contains @, : or brackets")
		}
	}
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("missing ] after IPv6 address")
		}
		t.Host = rest[1:end]
		if net.ParseIP(t.Host) == nil || !strings.Contains(t.Host, ":") {
			return bad("not an IPv6 address inside [ ]")
		}
		after := rest[end+1:]
		if after != "" {
			if !strings.HasPrefix(after, ":") {
				return bad("unexpected text after ]")
			}
			port, err := parsePort(after[1:])
			if err != nil {
				return bad(err.Error())
			}
			t.Port = port
		}
	case strings.Count(rest, ":") > 1:
		// A bare IPv6 address: no port possible without brackets.
		if net.ParseIP(rest) == nil {
			return bad("an IPv6 address with a port needs brackets: [addr]:port")
		}
		t.Host = rest
	case strings.Contains(rest, ":"):
		h, p, _ := strings.Cut(rest, ":")
		port, err := parsePort(p)
		if err != nil {
			return bad(err.Error())
		}
		t.Host, t.Port = h, port
	default:
		t.Host = rest
	}
	if t.Host == "" {
		return bad("no host")
	}
	if strings.ContainsAny(t.Host, "[]@") {
		return bad("host contains @ or brackets")
	}
	return t, nil
}

func parsePort(p string) (int, error) {
	if p == "" {
		return 0, errors.New("empty port")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}
