package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/sshtest"
)

// TestFactsFloodBounded is issue 14's hostile host, three times over: every
// command on it prints 1.5 GB (sshd's ForceCommand runs `head -c
// 1500000000 /dev/zero` instead of the facts script). fleet facts fans out
// to the three, fails each with the output limit, and allocates a bounded
// amount at once: it grew to 5.8 GB against one such host before.
func TestFactsFloodBounded(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "operator")
	var targets, lines []string
	for i := 0; i < 3; i++ {
		s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}, Config: []string{"ForceCommand head -c 1500000000 /dev/zero"}})
		targets = append(targets, s.Target())
		lines = append(lines, s.KnownHostsLine())
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	// The bound is on what fleet holds at once (the heap in use, sampled
	// while it runs), not on what it allocated in all: how much of a flood
	// arrives before the command is stopped depends on the machine's load,
	// and each packet read is garbage at once.
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var peakSoFar uint64
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			peakSoFar = max(peakSoFar, m.HeapInuse)
			select {
			case <-stop:
				peak <- peakSoFar
				return
			case <-tick.C:
			}
		}
	}()
	code, _, stderr := runFleet(t, append([]string{"facts", "--json", "-i", k.Path, "--known-hosts", known, "--ssh-config", "none"}, targets...)...)
	close(stop)
	heap := <-peak
	t.Logf("heap in use peaked at %d MiB for 3 × 1.5 GB", heap>>20)
	for _, tg := range targets {
		host := "[127.0.0.1]:" + tg[strings.LastIndex(tg, ":")+1:]
		want := tg + ": gather facts: gather facts on " + host + ": command output too large: it printed more than 4 MiB on stdout, and was stopped\nhint: fleet reads this command's output; check what on " + host + " prints so much (a shell profile, a wrapper around the command)\n"
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks\n%s", want)
		}
	}
	if code != exitFail || !strings.HasSuffix(stderr, "error: facts failed on 3 of 3 targets\n") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if heap > 256<<20 {
		t.Fatalf("the heap in use reached %d MiB reading three floods", heap>>20)
	}
}
