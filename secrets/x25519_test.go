package secrets

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// TestX25519RFC7748: the ladder gives RFC 7748's §5.2 output, and, for
// §6.1's keys, each side's public key from the fixed-base multiplication.
func TestX25519RFC7748(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got, err := x25519Ladder(h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"), h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
	if want := h("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("ladder: %x, %v; want %x", got, err, want)
	}
}

// TestX25519AgainstECDH: for random scalars and points (the high bit of
// the point set half the time, which X25519 ignores), the fixed-base
// multiplication and the ladder give crypto/ecdh's public keys and
// shared secrets, byte for byte.
func TestX25519AgainstECDH(t *testing.T) {
	c := ecdh.X25519()
	for i := 0; i < 2000; i++ {
		k, p := make([]byte, 32), make([]byte, 32)
		rand.Read(k)
		rand.Read(p)
		priv, err := c.NewPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x25519Base(k)
		if err != nil || !bytes.Equal(pub, priv.PublicKey().Bytes()) {
			t.Fatalf("base %x: %x, %v; want %x", k, pub, err, priv.PublicKey().Bytes())
		}
		// A random point, and a point on the curve (another's public key).
		other, _ := c.GenerateKey(rand.Reader)
		for _, q := range [][]byte{p, other.PublicKey().Bytes()} {
			peer, err := c.NewPublicKey(q)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := priv.ECDH(peer)
			got, gerr := x25519Ladder(k, q)
			if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("ladder %x × %x: %x, %v; crypto/ecdh %x, %v", k, q, got, gerr, want, werr)
			}
		}
	}
}

// TestX25519LowOrder: a point of small order gives no secret; the ladder
// refuses it as crypto/ecdh does, with errLowOrder.
func TestX25519LowOrder(t *testing.T) {
	k := make([]byte, 32)
	rand.Read(k)
	for _, p := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
	} {
		q, _ := hex.DecodeString(p)
		if _, err := ecdh.X25519().NewPublicKey(q); err != nil {
			t.Fatal(err)
		}
		if out, err := x25519Ladder(k, q); !errors.Is(err, errLowOrder) {
			t.Errorf("%s: %x, %v; want errLowOrder", p, out, err)
		}
	}
}

func BenchmarkX25519(b *testing.B) {
	k, p := make([]byte, 32), make([]byte, 32)
	rand.Read(k)
	rand.Read(p)
	b.Run("ecdh-exchange", func(b *testing.B) {
		peer, _ := ecdh.X25519().NewPublicKey(p)
		for b.Loop() {
			priv, _ := ecdh.X25519().NewPrivateKey(k)
			priv.ECDH(peer)
		}
	})
	b.Run("ladder", func(b *testing.B) {
		for b.Loop() {
			x25519Ladder(k, p)
		}
	})
	b.Run("base", func(b *testing.B) {
		for b.Loop() {
			x25519Base(k)
		}
	})
}
