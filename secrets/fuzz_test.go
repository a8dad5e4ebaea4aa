package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/agetest"
)

// FuzzParseHeader: ParseHeader never panics; it stops reading by itself
// whatever follows its input (endless lines after it cost a read bounded
// by its limit, checked with a small limit to keep the fuzzing fast);
// whatever age itself reads as a header (age.ExtractHeader,
// through the armor when the file is armored), ParseHeader reads too, with
// the same stanzas in the same order; and what it accepts is consistent:
// armored exactly when the file starts like armor, stanza types and
// arguments non-empty words. The seeds are real files encrypted by
// Encrypt to X25519, ssh-ed25519 and hybrid recipients, binary and
// armored, each checked against the recipients it was written for.
func FuzzParseHeader(f *testing.F) {
	x1, x2 := newX25519(f), newX25519(f)
	ed1, ed2 := newEd25519(f), newEd25519(f)
	pq1, pq2 := newHybrid(f), newHybrid(f)
	for _, recipients := range [][]string{
		{x1},
		{ed1},
		{x1, ed1},
		{ed1, ed2, x1, x2},
		{pq1, pq2}, // age refuses to mix post-quantum and classic recipients
	} {
		for _, armored := range []bool{false, true} {
			ct, err := Encrypt([]byte("hunter2"), recipients, armored)
			if err != nil {
				f.Fatal(err)
			}
			h, err := ParseHeader(bytes.NewReader(ct))
			if err != nil {
				f.Fatalf("a file Encrypt wrote (armored %v): %v", armored, err)
			}
			w, err := WantFor(recipients)
			if err != nil {
				f.Fatal(err)
			}
			if h.Armored != armored || len(h.Stanzas) != len(recipients) || !w.Matches(h) {
				f.Fatalf("header of a file encrypted to %v (armored %v): %+v", recipients, armored, h)
			}
			f.Add(ct)
		}
	}
	// Files as rage writes them: a grease stanza last.
	for _, armored := range []bool{false, true} {
		r, _ := age.ParseX25519Recipient(x1)
		ct, err := agetest.RageEncrypt([]byte("hunter2"), []age.Recipient{r}, armored, agetest.Grease())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			return
		}
		h, err := ParseHeader(bytes.NewReader(in))

		if want, aerr := ageStanzas(in); aerr == nil {
			if err != nil {
				t.Fatalf("age reads the header (%v), ParseHeader does not: %v", want, err)
			}
			if !slices.EqualFunc(h.Stanzas, want, func(a, b Stanza) bool { return a.Type == b.Type && slices.Equal(a.Args, b.Args) }) {
				t.Fatalf("stanzas %v, age reads %v", h.Stanzas, want)
			}
		}
		if err == nil {
			if h.Armored != IsArmored(in) {
				t.Fatalf("Armored = %v for a file that starts %q", h.Armored, in[:min(len(in), 40)])
			}
			for _, s := range h.Stanzas {
				// What ls may show: visible ASCII only, never empty.
				for _, a := range append([]string{s.Type}, s.Args...) {
					if a == "" || strings.IndexFunc(a, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
						t.Fatalf("stanza %q %q", s.Type, s.Args)
					}
				}
			}
			h.Tags()
			Want{Counts: map[string]int{"X25519": 1}}.Matches(h)
		} else if !errors.Is(err, ErrNotAge) {
			t.Fatalf("error does not wrap ErrNotAge: %v", err)
		}

		// Whatever follows the input, an endless line or endless lines,
		// the parser gives up after a read bounded by its limit.
		const limit = 64 << 10
		for _, line := range []string{"", strings.Repeat("A", 63) + "\n"} {
			tail := &endless{head: string(in), line: line}
			parseHeader(tail, limit)
			if tail.n > 2*limit+8<<10 {
				t.Fatalf("read %d bytes of a %d-byte input followed by endless %q, with a limit of %d", tail.n, len(in), line, limit)
			}
		}
	})
}

// ageStanzas is how age reads the header of in (armored when it starts
// like armor, as Decrypt decides): the type and arguments of each stanza.
func ageStanzas(in []byte) ([]Stanza, error) {
	var src io.Reader = bytes.NewReader(in)
	if IsArmored(in) {
		src = armor.NewReader(src)
	}
	hdr, err := age.ExtractHeader(src)
	if err != nil {
		return nil, err
	}
	// The header as age writes it: in a stanza's body (base64) no line
	// starts with "-> ".
	var out []Stanza
	for _, l := range strings.Split(string(hdr), "\n") {
		if f, ok := strings.CutPrefix(l, "-> "); ok {
			args := strings.Split(f, " ")
			out = append(out, Stanza{Type: args[0], Args: args[1:]})
		}
	}
	return out, nil
}

// endless reads head, then line over and over (an endless line of 'A' if
// empty), counting what was read.
type endless struct {
	head, line string
	n          int
}

var aaaa = strings.Repeat("A", 4096)

func (e *endless) Read(p []byte) (int, error) {
	if e.n > 1<<30 {
		return 0, errors.New("endless: read a GiB")
	}
	var k int
	switch {
	case e.n < len(e.head):
		k = copy(p, e.head[e.n:])
	case e.line == "":
		k = copy(p, aaaa)
	default:
		k = copy(p, e.line[(e.n-len(e.head))%len(e.line):])
	}
	e.n += k
	return k, nil
}

func newX25519(f *testing.F) string {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	return id.Recipient().String()
}

func newHybrid(f *testing.F) string {
	id, err := age.GenerateHybridIdentity()
	if err != nil {
		f.Fatal(err)
	}
	return id.Recipient().String()
}

func newEd25519(f *testing.F) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))
}
