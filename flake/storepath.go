package flake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// StoreDir is the Nix store fleet computes paths in.
const StoreDir = "/nix/store"

// SourcePath is the store path Nix gives a fetched source whose NAR hash
// is narHash (any encoding flake.lock or the nix CLI uses): every flake
// input is added as a fixed-output "source" path of its NAR hash, so the
// path follows from the lock alone, without Nix and without fetching.
func SourcePath(narHash string) (string, error) {
	return fixedOutputPath(narHash, "source")
}

// FilePath is the store path Nix gives a single file copied into the
// store under name (as "${./x.age}" does): the NAR hash of the file.
func FilePath(file, name string) (string, error) {
	fi, err := os.Lstat(file)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", file)
	}
	h := sha256.New()
	if err := nar.DumpPath(h, file); err != nil {
		return "", fmt.Errorf("nar hash of %s: %w", file, err)
	}
	return fixedOutputPath("sha256:"+hex.EncodeToString(h.Sum(nil)), name)
}

// fixedOutputPath is Nix's makeFixedOutputPath for a recursive sha256
// (what fetchers and path copies make): the store path hash is the
// sha256 of "source:sha256:HEX:STOREDIR:NAME", folded to 20 bytes, in
// Nix's base32.
func fixedOutputPath(narHash, name string) (string, error) {
	d, err := digest(narHash)
	if err != nil {
		return "", err
	}
	fp := sha256.Sum256([]byte("source:sha256:" + hex.EncodeToString(d) + ":" + StoreDir + ":" + name))
	folded := make([]byte, 20)
	for i, b := range fp {
		folded[i%20] ^= b
	}
	return StoreDir + "/" + nixbase32.EncodeToString(folded) + "-" + name, nil
}

// storePathRe finds a store path in an evaluated path: /nix/store/HASH-NAME
// and what follows it. A chroot store (nix --store DIR) may put its own
// directory in front, as nix 2.8 does for path literals.
var storePathRe = regexp.MustCompile(`^(?:/.*)?(/nix/store/[0-9a-df-np-sv-z]{32}-[^/]+)(?:/(.*))?$`)

// SplitStorePath splits an evaluated path into the store path it is in
// ("/nix/store/HASH-NAME") and the path inside it ("" for the store path
// itself); ok is false when p is not in a Nix store.
func SplitStorePath(p string) (storePath, rel string, ok bool) {
	m := storePathRe.FindStringSubmatch(p)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
