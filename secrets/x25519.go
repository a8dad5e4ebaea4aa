package secrets

import (
	"crypto/subtle"
	"errors"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// X25519 (RFC 7748) for wrapping file keys, where crypto/ecdh costs an
// extra scalar multiplication: its PrivateKey derives the public key as
// it is made, with the Montgomery ladder, so an ephemeral exchange costs
// two ladders. Here the ephemeral public key is a fixed-base
// multiplication on the Edwards form of the curve, with
// filippo.io/edwards25519's precomputed table (about 2.5 times faster
// than a ladder), and the exchange is one ladder over
// filippo.io/edwards25519/field, the arithmetic crypto/ecdh itself runs
// on. Both are constant time. The tests check them against crypto/ecdh
// and RFC 7748's vectors.

// errLowOrder is X25519's all-zero output: the peer's point has a small
// order, so the exchange contributes nothing secret.
var errLowOrder = errors.New("x25519: low order point")

// x25519Base is X25519(scalar, 9), the public key of scalar.
func x25519Base(scalar []byte) ([]byte, error) {
	s, err := edwards25519.NewScalar().SetBytesWithClamping(scalar)
	if err != nil {
		return nil, err
	}
	return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery(), nil
}

// a24 is (486662 - 2) / 4, the curve constant of the ladder's doubling.
const a24 = 121665

// x25519Ladder is X25519(scalar, point): RFC 7748's Montgomery ladder,
// with its clamping and the high bit of point ignored. An all-zero
// result is errLowOrder, as crypto/ecdh has it.
func x25519Ladder(scalar, point []byte) ([]byte, error) {
	if len(scalar) != 32 || len(point) != 32 {
		return nil, errors.New("x25519: scalar and point must be 32 bytes")
	}
	var k [32]byte
	copy(k[:], scalar)
	k[0] &= 248
	k[31] &= 127
	k[31] |= 64

	var x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb field.Element
	if _, err := x1.SetBytes(point); err != nil {
		return nil, err
	}
	x2.One()
	z2.Zero()
	x3.Set(&x1)
	z3.One()
	swap := 0
	for t := 254; t >= 0; t-- {
		bit := int(k[t/8]>>(t%8)) & 1
		swap ^= bit
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = bit

		a.Add(&x2, &z2)
		aa.Square(&a)
		b.Subtract(&x2, &z2)
		bb.Square(&b)
		e.Subtract(&aa, &bb)
		c.Add(&x3, &z3)
		d.Subtract(&x3, &z3)
		da.Multiply(&d, &a)
		cb.Multiply(&c, &b)
		x3.Add(&da, &cb)
		x3.Square(&x3)
		z3.Subtract(&da, &cb)
		z3.Square(&z3)
		z3.Multiply(&z3, &x1)
		x2.Multiply(&aa, &bb)
		z2.Mult32(&e, a24)
		z2.Add(&z2, &aa)
		z2.Multiply(&z2, &e)
	}
	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	out := x2.Bytes()
	if subtle.ConstantTimeCompare(out, make([]byte, 32)) == 1 {
		return nil, errLowOrder
	}
	return out, nil
}
