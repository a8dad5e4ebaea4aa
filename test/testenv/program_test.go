package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// Both kinds of test, and a program, are TBs.
var (
	_ TB = (*testing.T)(nil)
	_ TB = testing.TB(nil)
	_ TB = (*Program)(nil)
)

// TestProgramFatal: Fatalf ends the body with its message, the code after
// it does not run, and the cleanups run last registered first, the
// temporary directory among them.
func TestProgramFatal(t *testing.T) {
	var log bytes.Buffer
	p := NewProgram("testenv", &log)
	var order []string
	var dir string
	after := false
	err := p.Run(context.Background(), func(ctx context.Context, tb TB) error {
		dir = tb.TempDir()
		tb.Cleanup(func() { order = append(order, "first") })
		tb.Cleanup(func() { order = append(order, "second") })
		tb.Logf("step %d", 1)
		tb.Fatalf("boot: %s", "no SSH")
		after = true
		return nil
	})
	if err == nil || err.Error() != "boot: no SSH" {
		t.Fatalf("Run: %v, want the Fatalf message", err)
	}
	if after {
		t.Error("the body went on after Fatalf")
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("cleanups ran in order %v, want second,first", order)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("TempDir %s not removed: %v", dir, err)
	}
	if log.String() != "step 1\n" {
		t.Errorf("log %q", log.String())
	}
	if !p.Failed() {
		t.Error("not marked failed")
	}
}

// TestProgramOutcomes: a body's own error, an Errorf without an error
// returned, and a skip (fatal for a program) each make Run fail, with
// which message.
func TestProgramOutcomes(t *testing.T) {
	cases := []struct {
		name string
		body func(context.Context, TB) error
		want string
	}{
		{"ok", func(context.Context, TB) error { return nil }, ""},
		{"error returned", func(context.Context, TB) error { return errors.New("fleet install: exit 1") }, "fleet install: exit 1"},
		{"errorf", func(_ context.Context, tb TB) error { tb.Errorf("key on the overlay"); return nil }, "demo failed"},
		{"skip", func(_ context.Context, tb TB) error { tb.Skipf("needs root"); return nil }, "cannot run: needs root"},
	}
	for _, c := range cases {
		err := NewProgram("demo", nil).Run(context.Background(), c.body)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: Run returned %q, want %q", c.name, got, c.want)
		}
	}
}

// TestProgramInterrupted: a cancelled context (Ctrl-C) ends Run at once
// with the context's error, and the cleanups run while the body still
// blocks.
func TestProgramInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cleaned := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	err := NewProgram("demo", nil).Run(ctx, func(_ context.Context, tb TB) error {
		tb.Cleanup(func() { close(cleaned) })
		time.AfterFunc(10*time.Millisecond, cancel)
		<-release // a step that does not watch the context
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	select {
	case <-cleaned:
	default:
		t.Fatal("cleanups did not run")
	}
}
