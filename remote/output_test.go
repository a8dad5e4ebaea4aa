package remote_test

import (
	"context"
	"errors"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

// heapWatch samples the live heap while a test runs and reports its peak
// growth over the level when it started.
type heapWatch struct {
	base uint64
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	peak uint64
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func watchHeap() *heapWatch {
	runtime.GC()
	h := &heapWatch{base: heapNow(), stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			if n := heapNow(); n > h.peak {
				h.mu.Lock()
				h.peak = n
				h.mu.Unlock()
			}
		}
	}()
	return h
}

// growth stops watching and returns the peak growth in bytes.
func (h *heapWatch) growth() int64 {
	close(h.stop)
	h.wg.Wait()
	return int64(h.peak) - int64(h.base)
}

// flood is far more than any command fleet parses prints.
const flood = 256 << 20

// heapBound is the most a flooded command may add to the heap: the kept
// output (4 MiB) while it grows, and the SSH channel's window and packets.
const heapBound = 48 << 20

// TestStdoutBoundedOverSSH: a host printing without end on the stdout of a
// command whose output fleet parses costs bounded memory and ends in
// ErrOutputTooLarge, with the command stopped (it would never end on its
// own); what was kept is exactly the limit.
func TestStdoutBoundedOverSSH(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	// A safety net only: without the limit the command never ends.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := watchHeap()
	res, err := c.Run(ctx, remote.Cmd{Args: []string{"cat", "/dev/zero"}})
	grew := h.growth()
	t.Logf("heap grew by %d MiB", grew>>20)
	if !errors.Is(err, remote.ErrOutputTooLarge) {
		t.Fatalf("got %v, want ErrOutputTooLarge", err)
	}
	want := "cat /dev/zero on " + c.Host() + ": command output too large: it printed more than 4 MiB on stdout, and was stopped\nhint: fleet reads this command's output; check what on " + c.Host() + " prints so much (a shell profile, a wrapper around the command)"
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
	if len(res.Stdout) != remote.DefaultMaxStdout {
		t.Fatalf("kept %d bytes, want the limit %d", len(res.Stdout), remote.DefaultMaxStdout)
	}
	if grew > heapBound {
		t.Fatalf("heap grew by %d MiB reading an endless stream", grew>>20)
	}
	// The connection is still good for the next command.
	if out, err := remote.Output(context.Background(), c, "echo", "ok"); err != nil || string(out) != "ok\n" {
		t.Fatalf("after the flood: %q %v", out, err)
	}
}

// TestStdoutLimitRaised: a caller that needs more output sets MaxStdout
// and gets all of it.
func TestStdoutLimitRaised(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c := dialPinned(t, s, k)
	res, err := c.Run(context.Background(), remote.Cmd{Args: []string{"head", "-c", "20971520", "/dev/zero"}, MaxStdout: 20 << 20})
	if err != nil || len(res.Stdout) != 20<<20 {
		t.Fatalf("got %d bytes, %v", len(res.Stdout), err)
	}
	_, err = c.Run(context.Background(), remote.Cmd{Args: []string{"head", "-c", "20971521", "/dev/zero"}, MaxStdout: 20 << 20})
	if !errors.Is(err, remote.ErrOutputTooLarge) || !strings.Contains(err.Error(), "more than 20 MiB on stdout") {
		t.Fatalf("one byte more: %v", err)
	}
}

// TestStderrBoundedOverSSH: a flood on stderr (logged at debug level as it
// streams) keeps only a tail: the error holds the last lines, cut and
// escaped, and memory stays bounded.
func TestStderrBoundedOverSSH(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "c")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	logged := &countWriter{}
	c, err := remote.Dial(context.Background(), target(s), remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
		Log:     log.NewWithOptions(logged, log.Options{Level: log.DebugLevel}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := watchHeap()
	res, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", "head -c 268435456 /dev/zero | tr '\\0' x >&2; echo >&2; echo last words >&2; exit 3"}})
	grew := h.growth()
	t.Logf("heap grew by %d MiB; %d MiB logged", grew>>20, logged.n.Load()>>20)
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("got %v", err)
	}
	cut := strings.Repeat("x", 512) + "..."
	if !slices.Equal(ee.Stderr, []string{cut, "last words"}) {
		t.Fatalf("stderr tail %q", ee.Stderr)
	}
	if len(res.Stderr) != 64<<10 {
		t.Fatalf("Result.Stderr holds %d bytes, want the last 64 KiB", len(res.Stderr))
	}
	if grew > heapBound {
		t.Fatalf("heap grew by %d MiB for a %d MiB stderr", grew>>20, flood>>20)
	}
	if logged.n.Load() < flood {
		t.Fatalf("only %d bytes logged: stderr is logged as it streams", logged.n.Load())
	}
}

// TestLocalStdoutBounded: the same limit on this machine's commands.
func TestLocalStdoutBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := watchHeap()
	res, err := (&remote.Local{}).Run(ctx, remote.Cmd{Args: []string{"cat", "/dev/zero"}, MaxStdout: 1 << 20})
	grew := h.growth()
	if !errors.Is(err, remote.ErrOutputTooLarge) || err.Error() != "cat /dev/zero on local: command output too large: it printed more than 1 MiB on stdout, and was stopped\nhint: fleet reads this command's output; check what on local prints so much (a shell profile, a wrapper around the command)" {
		t.Fatalf("got %v", err)
	}
	if len(res.Stdout) != 1<<20 || grew > heapBound {
		t.Fatalf("kept %d bytes, heap grew by %d MiB", len(res.Stdout), grew>>20)
	}
	res, err = (&remote.Local{}).Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "head -c 268435456 /dev/zero >&2; echo >&2; echo last >&2; exit 4"}})
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.Code != 4 || ee.Stderr[len(ee.Stderr)-1] != "last" || len(res.Stderr) != 64<<10 {
		t.Fatalf("got %v, %d bytes of stderr", err, len(res.Stderr))
	}
}

type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }
