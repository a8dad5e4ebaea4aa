package provision

import (
	"bytes"
	"io"
	"regexp"
	"slices"
	"strings"
)

// nixOption is one nix setting for nixos-install (--option NAME=VALUE).
type nixOption struct{ name, value string }

// settingName is what nix accepts as a setting's name.
var settingName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// parseNixOptions reads NAME=VALUE settings. A value may hold a token
// (access-tokens): errors name the setting, never its value.
func parseNixOptions(kvs []string) ([]nixOption, error) {
	var out []nixOption
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, badOption("--option %q: want NAME=VALUE", kv)
		}
		if !settingName.MatchString(k) {
			return nil, badOption("--option %q: not a nix setting name", k)
		}
		if strings.ContainsAny(v, "\n\r") {
			return nil, badOption("--option %s: the value holds a line break", k)
		}
		out = append(out, nixOption{k, v})
	}
	return out, nil
}

// nixConfig is the NIX_CONFIG text that carries the settings: nix reads
// it like nix.conf, one "name = value" a line.
func nixConfig(opts []nixOption) string {
	var b strings.Builder
	for _, o := range opts {
		b.WriteString(o.name + " = " + o.value + "\n")
	}
	return b.String()
}

// redacted names the settings without their values, for labels.
func redacted(opts []nixOption) string {
	var s []string
	for _, o := range opts {
		s = append(s, o.name+"=<redacted>")
	}
	return strings.Join(s, " ")
}

// redactor passes whole lines on to w with every setting's value replaced
// by <redacted>. Call Flush at the end for a last unterminated line.
type redactor struct {
	w   io.Writer
	r   *strings.Replacer
	buf []byte
}

func newRedactor(w io.Writer, opts []nixOption) *redactor {
	var secrets []string
	for _, o := range opts {
		secrets = append(secrets, o.value)
		// access-tokens is "host=token ...": nix may print a token alone.
		for _, f := range strings.Fields(o.value) {
			if _, tok, ok := strings.Cut(f, "="); ok {
				secrets = append(secrets, tok)
			}
		}
	}
	// Longest first, so a value is not cut by a shorter one inside it;
	// values too short to be a secret ("2", "true") are left alone.
	slices.SortFunc(secrets, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var pairs []string
	for _, s := range slices.Compact(secrets) {
		if len(s) >= minSecret {
			pairs = append(pairs, s, "<redacted>")
		}
	}
	return &redactor{w: w, r: strings.NewReplacer(pairs...)}
}

// minSecret is the shortest value the output is redacted of.
const minSecret = 6

func (r *redactor) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	i := bytes.LastIndexByte(r.buf, '\n')
	if i < 0 && len(r.buf) < 64<<10 {
		return len(p), nil
	}
	if i < 0 {
		i = len(r.buf) - 1 // a line without end: pass on what we have
	}
	if _, err := io.WriteString(r.w, r.r.Replace(string(r.buf[:i+1]))); err != nil {
		return 0, err
	}
	r.buf = append(r.buf[:0], r.buf[i+1:]...)
	return len(p), nil
}

// Flush passes on a last unterminated line.
func (r *redactor) Flush() {
	if len(r.buf) > 0 {
		io.WriteString(r.w, r.r.Replace(string(r.buf)))
		r.buf = r.buf[:0]
	}
}
