// Package agetest writes age files the way other implementations do, from
// the age format's specification (C2SP age v1), for tests that must read
// files fleet's own writer never produces: rage and ragenix add a "grease"
// stanza to every header ([RageEncrypt]). The files decrypt with the real
// age CLI.
package agetest

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Stanza is a header stanza: type, arguments, body (not yet base64).
type Stanza struct {
	Type string
	Args []string
	Body []byte
}

// Grease returns a random grease stanza as rage makes one
// (age-core's grease_the_joint): a type of 1 to 8 random visible ASCII
// characters followed by "-grease", 0 to 4 arguments of 1 to 8 such
// characters, and a body of 0 to 99 random bytes.
func Grease() Stanza {
	str := func() string {
		var b strings.Builder
		for n := 1 + randInt(8); n > 0; n-- {
			b.WriteByte(byte(33 + randInt(94)))
		}
		return b.String()
	}
	s := Stanza{Type: str() + "-grease"}
	for n := randInt(5); n > 0; n-- {
		s.Args = append(s.Args, str())
	}
	s.Body = make([]byte, randInt(100))
	rand.Read(s.Body)
	return s
}

func randInt(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err)
	}
	return v.Int64()
}

// RageEncrypt encrypts plaintext to recipients and writes the header as
// rage does: the recipients' stanzas, then the extra stanzas (rage adds
// one grease stanza, last), the header MAC, then the payload, armored if
// asked. Every part is built here from the specification, not by the age
// library's writer; only the recipients' own wrapping of the file key is
// theirs.
func RageEncrypt(plaintext []byte, recipients []age.Recipient, armored bool, extra ...Stanza) ([]byte, error) {
	fileKey := make([]byte, 16)
	rand.Read(fileKey)
	var stanzas []Stanza
	for _, r := range recipients {
		ss, err := r.Wrap(fileKey)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			stanzas = append(stanzas, Stanza{Type: s.Type, Args: s.Args, Body: s.Body})
		}
	}
	stanzas = append(stanzas, extra...)

	var hdr bytes.Buffer
	hdr.WriteString("age-encryption.org/v1\n")
	for _, s := range stanzas {
		hdr.WriteString(strings.Join(append([]string{"->", s.Type}, s.Args...), " ") + "\n")
		b64 := base64.RawStdEncoding.EncodeToString(s.Body)
		for len(b64) >= 64 { // full lines, then a short (maybe empty) last one
			hdr.WriteString(b64[:64] + "\n")
			b64 = b64[64:]
		}
		hdr.WriteString(b64 + "\n")
	}
	hdr.WriteString("---")
	macKey, err := hkdf.Key(sha256.New, fileKey, nil, "header", 32)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(hdr.Bytes())
	hdr.WriteString(" " + base64.RawStdEncoding.EncodeToString(mac.Sum(nil)) + "\n")

	// Payload: a 16-byte nonce, then STREAM over ChaCha20-Poly1305 in
	// 64 KiB chunks, each nonce an 11-byte counter and a last-chunk flag.
	nonce := make([]byte, 16)
	rand.Read(nonce)
	payloadKey, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", 32)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(payloadKey)
	if err != nil {
		return nil, err
	}
	out := append(hdr.Bytes(), nonce...)
	const chunk = 64 << 10
	for i := uint64(0); ; i++ {
		n := min(len(plaintext), chunk)
		last := len(plaintext) <= chunk
		cn := make([]byte, 12)
		for j := 0; j < 8; j++ {
			cn[10-j] = byte(i >> (8 * j))
		}
		if last {
			cn[11] = 1
		}
		out = aead.Seal(out, cn, plaintext[:n], nil)
		plaintext = plaintext[n:]
		if last {
			break
		}
	}
	if !armored {
		return out, nil
	}
	// Armor: PEM with padded base64 in 64-column lines.
	b64 := base64.StdEncoding.EncodeToString(out)
	var ab strings.Builder
	ab.WriteString("-----BEGIN AGE ENCRYPTED FILE-----\n")
	for len(b64) > 64 {
		ab.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	ab.WriteString(b64 + "\n-----END AGE ENCRYPTED FILE-----\n")
	return []byte(ab.String()), nil
}
