package flake

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// NarHash returns the SRI sha256 ("sha256-...") of the NAR serialisation
// of dir, as Nix computes a source's narHash. A top-level .git directory is
// left out, as it is when Nix fetches a git input.
func NarHash(dir string) (string, error) {
	h := sha256.New()
	root := filepath.Clean(dir)
	err := nar.DumpPathFilter(h, root, func(p string, _ nar.NodeType) bool {
		return filepath.Clean(p) != filepath.Join(root, ".git")
	})
	if err != nil {
		return "", fmt.Errorf("nar hash of %s: %w", dir, err)
	}
	return "sha256-" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// SameHash compares two Nix hashes in any of the encodings flake.lock and
// the nix CLI use (SRI, sha256:base32, sha256:hex).
func SameHash(a, b string) (bool, error) {
	da, err := digest(a)
	if err != nil {
		return false, err
	}
	db, err := digest(b)
	if err != nil {
		return false, err
	}
	return string(da) == string(db), nil
}

func digest(s string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(s, "sha256-"); ok {
		b, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("hash %q: not a sha256 SRI hash", s)
		}
		return b, nil
	}
	h, err := nixhash.ParseAny(s, nil)
	if err != nil {
		return nil, fmt.Errorf("hash %q: %w", s, err)
	}
	return h.Digest(), nil
}
