package secrets

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// TestRekeyOneFlush: a rekey of 40 files in two directories, traced with
// strace, flushes once (one syncfs) after every temp file is written and
// before the first rename, fsyncs no file, renames each file once, and
// syncs each directory once after the renames.
func TestRekeyOneFlush(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("syncfs is Linux's")
	}
	testenv.Programs(t, "strace")
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	dir := t.TempDir()
	makeSet(t, dir, 30, []string{a.Line}, nil)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	makeSet(t, sub, 10, []string{a.Line}, nil)
	// The child (TestRekeyCrashChild) rekeys every *.age of dir and sub.
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command("strace", "-f", "-qq", "-o", trace, "-e", "trace=fsync,fdatasync,syncfs,sync,rename,renameat,renameat2,openat",
		os.Args[0], "-test.run=^TestRekeyCrashChild$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir+"|"+a.Path+"|"+a.Line+","+b.Line+"|sub")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// Syscalls in order, with the fd's file for fsync (from openat).
	var calls []string
	fds := map[string]string{}
	openRe := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]+)", [^)]*\) = (\d+)`)
	callRe := regexp.MustCompile(`^\d+ +(fsync|fdatasync|syncfs|sync|rename|renameat|renameat2)\((.*)\) += 0`)
	// strace -f splits a call another thread interrupts into
	// "PID name(args <unfinished ...>" and "PID <... name resumed>rest".
	pending := map[string]string{}
	resumed := regexp.MustCompile(`^(\d+) +<\.\.\. \w+ resumed>(.*)$`)
	for _, l := range strings.Split(string(raw), "\n") {
		if head, ok := strings.CutSuffix(l, " <unfinished ...>"); ok {
			pending[strings.Fields(head)[0]] = head
			continue
		}
		if m := resumed.FindStringSubmatch(l); m != nil {
			l = pending[m[1]] + m[2]
		}
		if m := openRe.FindStringSubmatch(l); m != nil {
			fds[m[2]] = m[1]
			continue
		}
		if m := callRe.FindStringSubmatch(l); m != nil {
			arg := m[2]
			if m[1] == "fsync" || m[1] == "fdatasync" || m[1] == "syncfs" {
				arg = fds[strings.TrimSpace(arg)]
			}
			calls = append(calls, m[1]+" "+arg)
		}
	}
	count := func(prefix string) (n int, first, last int) {
		first, last = -1, -1
		for i, c := range calls {
			if strings.HasPrefix(c, prefix) {
				n++
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		return
	}
	syncfs, sf, _ := count("syncfs ")
	renames, rf, rl := count("rename")
	fsyncs, ff, _ := count("fsync ")
	if syncfs != 1 || renames != 40 || sf > rf {
		t.Errorf("syncfs %d, renames %d, syncfs at %d, first rename at %d; want one syncfs before 40 renames", syncfs, renames, sf, rf)
	}
	if fsyncs != 2 || ff < rl {
		t.Errorf("fsyncs %d, the first at %d, the last rename at %d; want 2 (the directories) after the renames", fsyncs, ff, rl)
	}
	for _, c := range calls {
		if strings.HasPrefix(c, "fsync ") && !strings.HasSuffix(c, " "+dir) && !strings.HasSuffix(c, " "+sub) {
			t.Errorf("%s: want only the directories fsynced", c)
		}
	}
	if t.Failed() {
		t.Logf("calls:\n%s", strings.Join(calls, "\n"))
	}
	ids, _ := LoadIdentities([]string{b.Path}, nil)
	for _, d := range []string{dir, sub} {
		names, _ := filepath.Glob(filepath.Join(d, "*.age"))
		for _, n := range names {
			if pt, err := DecryptFile(n, ids); err != nil || !bytes.HasPrefix(pt, []byte("PLAINTEXT-")) {
				t.Fatalf("%s: %v", n, err)
			}
		}
	}
}
