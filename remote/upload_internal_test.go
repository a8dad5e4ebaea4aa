package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestUploadSegments: sizes around the segment boundaries arrive byte-exact
// and pass the per-segment check, with dd and with the head/tail fallback
// of an installer whose dd predates count_bytes.
func TestUploadSegments(t *testing.T) {
	const seg = 4096
	shims := t.TempDir()
	os.WriteFile(filepath.Join(shims, "dd"), []byte("#!/bin/sh\necho \"dd: unknown operand iflag\" >&2\nexit 1\n"), 0o755)
	for _, dd := range []string{"dd", "old dd"} {
		var env []string
		if dd == "old dd" {
			env = []string{"PATH=" + shims + ":" + os.Getenv("PATH")}
		}
		for _, size := range []int{0, 1, seg - 1, seg, seg + 1, 3 * seg, 3*seg + 5} {
			t.Run(dd+"/"+strconv.Itoa(size), func(t *testing.T) {
				data := make([]byte, size)
				rand.Read(data)
				dst := filepath.Join(t.TempDir(), "f")
				r := envRunner{&Local{}, env}
				if err := upload(context.Background(), r, bytes.NewReader(data), int64(size), dst, UploadOptions{}, seg); err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("content differs (%d of %d bytes): %v", len(got), size, err)
				}
				if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
					t.Fatalf("temp files left: %v", ents)
				}
			})
		}
	}
}

type envRunner struct {
	Runner
	env []string
}

func (e envRunner) Run(ctx context.Context, c Cmd) (*Result, error) {
	c.Env = append(append([]string{}, c.Env...), e.env...)
	return e.Runner.Run(ctx, c)
}
