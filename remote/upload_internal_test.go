package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestUploadSegments: sizes around the segment boundaries, and more
// segments than hash at once, arrive byte-exact and pass the per-segment
// check, with dd and with the head/tail fallback
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
		for _, size := range []int{0, 1, seg - 1, seg, seg + 1, 3 * seg, 3*seg + 5, 11*seg + 7} {
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

// envRunner is a Runner that adds environment variables to every command,
// the way an installer with other tools on its PATH would run them.
type envRunner struct {
	Runner
	env []string
}

func (e envRunner) Run(ctx context.Context, c Cmd) (*Result, error) {
	c.Env = append(append([]string{}, c.Env...), e.env...)
	return e.Runner.Run(ctx, c)
}

// TestUploadOldDD: on an installer whose dd predates count_bytes (an old
// busybox), the upload falls back to head -c and still delivers exactly
// the bytes, followed by a checksum line it must not swallow.
func TestUploadOldDD(t *testing.T) {
	shims := t.TempDir()
	called := filepath.Join(t.TempDir(), "dd-called")
	// Like busybox 1.30's dd, which knows no iflag: it refuses the probe.
	os.WriteFile(filepath.Join(shims, "dd"), []byte("#!/bin/sh\ntouch "+called+"\necho \"dd: unknown operand iflag\" >&2\nexit 1\n"), 0o755)
	r := envRunner{&Local{}, []string{"PATH=" + shims + ":" + os.Getenv("PATH")}}
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	dst := filepath.Join(t.TempDir(), "f")
	if err := Upload(context.Background(), r, bytes.NewReader(data), int64(len(data)), dst, UploadOptions{Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(called); err != nil {
		t.Fatal("the dd shim was never asked: the test does not test the fallback")
	}
	got, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d of %d bytes): %v", len(got), len(data), err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	// And a cut-short source through the fallback still leaves nothing.
	err = Upload(context.Background(), r, strings.NewReader("short"), 100, dst, UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "source ended after 5 of 100 bytes") {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("a failed upload changed the destination")
	}
}

// TestUploadCorrupted: when what the installer hashes is not what was
// sent, the upload fails saying so, and neither the destination nor a
// temp file appears.
func TestUploadCorrupted(t *testing.T) {
	shims := t.TempDir()
	// An openssl that hashes what it reads with one byte changed.
	os.WriteFile(filepath.Join(shims, "openssl"), []byte("#!/bin/sh\n{ printf x; tail -c +2; } | sha256sum | sed 's/ .*/ *stdin/'\n"), 0o755)
	r := envRunner{&Local{}, []string{"PATH=" + shims + ":" + os.Getenv("PATH")}}
	dst := filepath.Join(t.TempDir(), "f")
	err := Upload(context.Background(), r, strings.NewReader("hunter2"), 7, dst, UploadOptions{})
	var ee *ExitError
	if !errors.As(err, &ee) || !slices.Contains(ee.Stderr, "upload corrupted: the sha256 of the bytes received differs from the bytes sent") {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
