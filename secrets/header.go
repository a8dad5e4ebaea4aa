package secrets

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"filippo.io/age/armor"
	"golang.org/x/crypto/ssh"
)

// ErrNotAge is wrapped when a file is not an age v1 file.
var ErrNotAge = errors.New("not an age file")

const ageIntro = "age-encryption.org/v1"

// armorBegin starts an armored age file.
const armorBegin = "-----BEGIN AGE ENCRYPTED FILE-----"

// Stanza is one recipient stanza of an age header, without its body.
type Stanza struct {
	Type string   // "ssh-ed25519", "ssh-rsa", "X25519", "mlkem768x25519", a plugin's name...
	Args []string // ssh stanzas: Args[0] is the recipient's tag
}

// Grease reports whether s is a grease stanza: one that rage (and so
// ragenix) adds to every header to keep implementations honest, with a
// random type ending in "-grease". The age spec has recipients ignore
// stanzas they do not know; it encrypts to nobody.
func (s Stanza) Grease() bool { return strings.HasSuffix(s.Type, "-grease") }

// coreTypes are the stanza types of the recipients age itself has.
var coreTypes = []string{"ssh-ed25519", "ssh-rsa", "X25519", "mlkem768x25519", "scrypt"}

// Header is what an age file says about its recipients.
type Header struct {
	Armored bool
	Stanzas []Stanza
}

// Tags returns the ssh tags of the header's ssh stanzas.
func (h Header) Tags() []string {
	var tags []string
	for _, s := range h.Stanzas {
		if isSSHType(s.Type) && len(s.Args) > 0 {
			tags = append(tags, s.Type+" "+s.Args[0])
		}
	}
	return tags
}

// Count returns how many stanzas have type t.
func (h Header) Count(t string) int {
	n := 0
	for _, s := range h.Stanzas {
		if s.Type == t {
			n++
		}
	}
	return n
}

func isSSHType(t string) bool { return t == "ssh-ed25519" || t == "ssh-rsa" }

// IsArmored reports whether b starts like an armored age file.
func IsArmored(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(armorBegin))
}

// ReadRecipients reads the header of the age file at path without
// decrypting it.
func ReadRecipients(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return ParseHeader(f)
}

// maxHeader bounds a header as age does (2 MiB): ParseHeader reads no more
// of a file than that (and armor's overhead), whatever follows, so a huge
// file that is not age costs no more than a real one.
const maxHeader = 2 << 20

// ParseHeader reads an age header (binary or armored) from r.
func ParseHeader(r io.Reader) (Header, error) { return parseHeader(r, maxHeader) }

// parseHeader reads a header of at most limit bytes (after armor).
func parseHeader(r io.Reader, limit int) (Header, error) {
	// Armor takes 65 bytes a line for 48 of header, plus its first line
	// and up to 1 KiB of whitespace before it (age's limit, as Decrypt
	// reads it).
	br := bufio.NewReader(io.LimitReader(r, int64(limit/48+2)*65+2048))
	peek, _ := br.Peek(1024 + len(armorBegin))
	var h Header
	var src io.Reader = br
	if IsArmored(peek) {
		h.Armored = true
		src = armor.NewReader(br)
	}
	lr := &headerReader{r: bufio.NewReader(src), left: limit, limit: limit}
	line, err := lr.line()
	if err != nil || line != ageIntro {
		return h, fmt.Errorf("%w: missing %q line", ErrNotAge, ageIntro)
	}
	for {
		line, err := lr.line()
		if err != nil {
			return h, fmt.Errorf("%w: truncated header: %w", ErrNotAge, err)
		}
		switch {
		case strings.HasPrefix(line, "---"):
			return h, nil
		case strings.HasPrefix(line, "->"):
			f, ok := stanzaLine(line)
			if !ok {
				// Not repeated: the bytes may be meant for a terminal.
				return h, fmt.Errorf("%w: malformed stanza line", ErrNotAge)
			}
			h.Stanzas = append(h.Stanzas, Stanza{Type: f[0], Args: f[1:]})
		}
		// other lines are stanza bodies
	}
}

// stanzaLine splits "-> TYPE ARG..." as the spec has it: a type and
// arguments of visible ASCII (33 to 126), one space apart.
func stanzaLine(line string) ([]string, bool) {
	rest, ok := strings.CutPrefix(line, "-> ")
	if !ok {
		return nil, false
	}
	f := strings.Split(rest, " ")
	for _, a := range f {
		if a == "" {
			return nil, false
		}
		for i := 0; i < len(a); i++ {
			if a[i] < 33 || a[i] > 126 {
				return nil, false
			}
		}
	}
	return f, true
}

// headerReader reads the lines of a header, at most limit bytes in all.
type headerReader struct {
	r           *bufio.Reader
	left, limit int
}

// line returns the next line without its newline. It reads no further
// than the header's limit.
func (h *headerReader) line() (string, error) {
	var line []byte
	for {
		frag, err := h.r.ReadSlice('\n')
		line = append(line, frag...)
		switch {
		case len(line) > h.left:
			return "", fmt.Errorf("header longer than %d bytes", h.limit)
		case err == bufio.ErrBufferFull:
			continue
		case err != nil:
			return "", err
		}
		h.left -= len(line)
		return string(line[:len(line)-1]), nil
	}
}

// SSHTag returns the stanza tag age uses for an SSH public key: the
// unpadded base64 of the first 4 bytes of sha256 over its wire format.
func SSHTag(pk ssh.PublicKey) string {
	h := sha256.Sum256(pk.Marshal())
	return base64.RawStdEncoding.EncodeToString(h[:4])
}

// Want summarises a list of recipients the way a header can be compared
// against: ssh tags plus counts of other kinds.
type Want struct {
	Tags    []string       // "ssh-ed25519 TAG" in recipient order
	Counts  map[string]int // stanza type -> how many (X25519, mlkem768x25519)
	Plugins int            // plugin recipients, whose stanza types only their plugin knows
}

// WantFor computes what the header of a file encrypted to recipients
// (as written in secrets.nix) must contain.
func WantFor(recipients []string) (Want, error) {
	w := Want{Counts: map[string]int{}}
	for _, r := range recipients {
		r = strings.TrimSpace(r)
		switch {
		case strings.HasPrefix(r, "ssh-"):
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r))
			if err != nil {
				return w, fmt.Errorf("recipient %q: %w", shortKey(r), err)
			}
			w.Tags = append(w.Tags, pk.Type()+" "+SSHTag(pk))
		case strings.HasPrefix(r, "age1pq1"):
			w.Counts["mlkem768x25519"]++
		case strings.HasPrefix(r, "age1") && strings.LastIndex(r, "1") == 3:
			w.Counts["X25519"]++
		case strings.HasPrefix(r, "age1"):
			w.Plugins++
		default:
			return w, fmt.Errorf("recipient %q: unknown type", shortKey(r))
		}
	}
	return w, nil
}

// Matches reports whether h is encrypted to exactly the recipients of w:
// the same ssh tags (as a set) and the same number of other stanzas of each
// kind; see [Want.Mismatch].
func (w Want) Matches(h Header) bool { return w.Mismatch(h) == "" }

// Mismatch says how h differs from the recipients of w, or "" when it does
// not. Grease stanzas are ignored. Every other stanza is a recipient: an
// age type counts against the rule's recipients of that type, and one of a
// type only a plugin writes against the rule's plugin recipients; with
// none in the rule it is someone the rule does not name (a plugin
// recipient removed from it, say), so the file needs rekeying.
func (w Want) Mismatch(h Header) string {
	const differ = "recipients differ from the rule"
	have := map[string]int{}
	for _, t := range h.Tags() {
		have[t]++
	}
	want := map[string]int{}
	for _, t := range w.Tags {
		want[t]++
	}
	if len(have) != len(want) {
		return differ
	}
	for t := range want {
		if have[t] == 0 {
			return differ
		}
	}
	counts := map[string]int{}
	plugins := 0
	var unknown []string
	for _, s := range h.Stanzas {
		switch {
		case s.Grease() || isSSHType(s.Type):
		case slices.Contains(coreTypes, s.Type):
			counts[s.Type]++
		default:
			plugins++
			if !slices.Contains(unknown, s.Type) {
				unknown = append(unknown, s.Type)
			}
		}
	}
	for t, n := range w.Counts {
		if counts[t] != n {
			return differ
		}
		delete(counts, t)
	}
	if len(counts) > 0 {
		return differ
	}
	if plugins > 0 && w.Plugins == 0 {
		noun := "stanza"
		if plugins > 1 {
			noun = "stanzas"
		}
		return fmt.Sprintf("encrypted to %d %s of type %s that the rule does not name", plugins, noun, strings.Join(unknown, ", "))
	}
	if plugins != w.Plugins {
		return differ
	}
	return ""
}

func shortKey(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
