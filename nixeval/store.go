package nixeval

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"strings"

	"github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// StoreDir is the Nix store that path values are named in.
const StoreDir = "/nix/store"

// storePath computes the store path Nix gives a local path when it copies
// it to the store (a path in a string, or a path in JSON output), without
// copying anything: as `nix-instantiate --readonly-mode` does.
func (ev *evaluator) storePath(pos Pos, abs string) (string, error) {
	if p, ok := ev.stored[abs]; ok {
		return p, nil
	}
	name := filepath.Base(abs)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+-._?=", c) >= 0) || name[0] == '.' {
			return "", errorf(pos, "invalid character in store path name '%s'", name)
		}
	}
	// A final symlink is copied as a link, its target never read.
	real, err := ev.confine(pos, abs, false)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	lw := &limitWriter{w: h, left: int64(ev.opts.MaxBytes)}
	if err := nar.DumpPath(lw, real); err != nil {
		if lw.left < 0 {
			return "", limitf(pos, "path '%s' is larger than %d bytes", abs, ev.opts.MaxBytes)
		}
		return "", &Error{Pos: pos, Msg: "getting status of '" + abs + "'", Err: unwrapPathErr(err)}
	}
	fp := "source:sha256:" + hex.EncodeToString(h.Sum(nil)) + ":" + StoreDir + ":" + name
	sum := sha256.Sum256([]byte(fp))
	p := StoreDir + "/" + nixbase32.EncodeToString(nixhash.CompressHash(sum[:], 20)) + "-" + name
	ev.stored[abs] = p
	return p, nil
}

type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(b []byte) (int, error) {
	l.left -= int64(len(b))
	if l.left < 0 {
		return 0, io.ErrShortWrite
	}
	return l.w.Write(b)
}
