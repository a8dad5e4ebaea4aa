package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"

	"github.com/fleetnix/fleet/test/agetest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestGreaseStanzas: files written by rage and ragenix carry a grease
// stanza that the age spec says recipients ignore. Such files (built here
// as rage builds them, then opened with the real age CLI to prove they are
// valid) are ok for ls and left alone by rekey; the grease stanza shows in
// the JSON as grease, never as a recipient. A grease stanza does not hide
// a recipient that is missing or one too many.
func TestGreaseStanzas(t *testing.T) {
	needAge(t)
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	agePath, ageRec := ageKey(t)
	sshRec, err := agessh.ParseRecipient(a.Line)
	if err != nil {
		t.Fatal(err)
	}
	xRec, err := age.ParseX25519Recipient(ageRec)
	if err != nil {
		t.Fatal(err)
	}
	rule := Rule{File: "g.age", PublicKeys: []string{a.Line, ageRec}}
	// The grease of agenix's example file, and random ones with every
	// body shape: empty, one short line, exactly one full line (then an
	// empty one), more lines.
	greases := []agetest.Stanza{{Type: `V'v(/u$-grease`, Args: []string{"em/Vgf", "2qDuk"}, Body: []byte("\x01\x02\x03 grease body")}}
	for _, n := range []int{0, 1, 47, 48, 49, 96, 99} {
		g := agetest.Grease()
		g.Body = bytes.Repeat([]byte{0xa5}, n)
		greases = append(greases, g)
	}
	for i := 0; i < 8; i++ {
		greases = append(greases, agetest.Grease())
	}
	dir := t.TempDir()
	r := &Rules{Dir: dir, Entries: []Rule{rule}}
	ids, _ := LoadIdentities([]string{a.Path}, nil)
	for i, g := range greases {
		armored := i%2 == 1
		rule.Armor = armored
		r.Entries[0] = rule
		pt := []byte(fmt.Sprintf("rage-secret-%d", i))
		ct, err := agetest.RageEncrypt(pt, []age.Recipient{sshRec, xRec}, armored, g)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "g.age")
		if err := os.WriteFile(f, ct, 0o600); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%q (%d-byte body, armor %v)", g.Type, len(g.Body), armored)
		if got := run(t, nil, "age", "-d", "-i", agePath, f); !bytes.Equal(got, pt) {
			t.Fatalf("%s: age -d: %q", name, got)
		}
		if got, err := Decrypt(ct, ids); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: Decrypt: %q, %v", name, got, err)
		}
		fs := CheckEntry(r, rule)
		if fs.Status != StatusOK {
			t.Errorf("%s: ls status %s (%s), want ok", name, fs.Status, fs.Problem)
		}
		var types []string
		for _, ar := range fs.Actual {
			types = append(types, fmt.Sprintf("%s/%v", ar.Type, ar.Grease))
		}
		if want := "ssh-ed25519/false X25519/false " + g.Type + "/true"; strings.Join(types, " ") != want {
			t.Errorf("%s: actual %v, want %s", name, types, want)
		}
		res, err := Rekey(context.Background(), r, ids, RekeyOptions{})
		if err != nil || len(res.Unchanged) != 1 {
			t.Errorf("%s: rekey %+v, %v; want it unchanged", name, res, err)
		}
		if got, _ := os.ReadFile(f); !bytes.Equal(got, ct) {
			t.Errorf("%s: rekey rewrote the file", name)
		}
	}

	// Grease does not make up for a recipient: one missing, one too many.
	ct, _ := agetest.RageEncrypt([]byte("x"), []age.Recipient{sshRec}, false, greases[0])
	os.WriteFile(filepath.Join(dir, "g.age"), ct, 0o600)
	rule.Armor = false
	if fs := CheckEntry(r, rule); fs.Status != StatusNeedsRekey {
		t.Errorf("X25519 recipient missing: %s, want needs-rekey", fs.Status)
	}
	bRec, _ := agessh.ParseRecipient(b.Line)
	ct, _ = agetest.RageEncrypt([]byte("x"), []age.Recipient{sshRec, xRec, bRec}, false, greases[0])
	os.WriteFile(filepath.Join(dir, "g.age"), ct, 0o600)
	if fs := CheckEntry(r, rule); fs.Status != StatusNeedsRekey {
		t.Errorf("an extra ssh recipient: %s, want needs-rekey", fs.Status)
	}
	// A stanza of an unknown type that is not grease is someone who may
	// decrypt (a plugin recipient removed from the rule): not ignored.
	plug := agetest.Stanza{Type: "piv-p256", Args: []string{"dGFnZw", "AsrpaeRCbB3Lhf0ExQ3cJmXlW1Ft8jMwXwZKZxd1VZZt"}, Body: bytes.Repeat([]byte{1}, 32)}
	ct, _ = agetest.RageEncrypt([]byte("x"), []age.Recipient{sshRec, xRec}, false, plug, greases[1])
	os.WriteFile(filepath.Join(dir, "g.age"), ct, 0o600)
	if fs := CheckEntry(r, rule); fs.Status != StatusNeedsRekey || fs.Problem != "encrypted to 1 stanza of type piv-p256 that the rule does not name" {
		t.Errorf("an unknown recipient type: %s (%s), want needs-rekey naming it", fs.Status, fs.Problem)
	}
}

// TestHeaderStanzaLines: a stanza line must be what the spec allows (types
// and arguments of visible ASCII, one space apart); anything else, such as
// terminal escapes meant for whoever lists the file, makes the header
// malformed, and the error does not repeat the bytes.
func TestHeaderStanzaLines(t *testing.T) {
	for _, line := range []string{
		"-> \x1b]0;pwned\x07-grease", "-> X25519  double-space", "-> X25519 trailing ", "-> caf\xc3\xa9", "->", "-> ",
	} {
		hdr := "age-encryption.org/v1\n" + line + "\nAAAA\n--- x\n"
		_, err := ParseHeader(strings.NewReader(hdr))
		if !errors.Is(err, ErrNotAge) || err.Error() != "not an age file: malformed stanza line" {
			t.Errorf("%q: %v, want ErrNotAge: malformed stanza line", line, err)
		}
	}
	h, err := ParseHeader(strings.NewReader("age-encryption.org/v1\n-> V'v(/u$-grease em/Vgf 2qDuk\n\n-> X25519 abc\nAAAA\n--- x\n"))
	if err != nil || len(h.Stanzas) != 2 || h.Stanzas[0].Type != `V'v(/u$-grease` || !h.Stanzas[0].Grease() || h.Stanzas[1].Grease() {
		t.Fatalf("%+v, %v", h, err)
	}
}
