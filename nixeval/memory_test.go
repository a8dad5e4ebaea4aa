package nixeval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileChildEnv names the expression TestHostileMemory's child evaluates.
const hostileChildEnv = "FLEET_NIXEVAL_HOSTILE"

// big binds an 8 MiB string and sum, which forces every string of a list
// and keeps none of them, built by doubling (16 MiB of the 64 MiB
// allowed, with the halves): the hostile part is what follows.
var big = `let d = s: s + s; big = ` + strings.Repeat("d (", 19) + `"0123456789abcdef"` + strings.Repeat(")", 19) + `; sum = builtins.foldl' (n: s: n + builtins.stringLength s) 0; in `

// hostile are small files that build far more than they are: each must
// end in an error about the bytes built, at the operation that builds
// them (where the text at ends), in a process that stays well under 256 MB.
var hostile = []struct {
	name, src, at string
	json          bool // the error comes converting to JSON
}{
	{"concatStringsSep", big + `sum (builtins.genList (i: builtins.concatStringsSep "" [ big (toString i) ]) 100)`, "(i: ", false},
	{"replaceStrings", `let s = builtins.replaceStrings [ "x" ] [ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" ]; in builtins.foldl' (n: s: n + builtins.stringLength s) 0 (builtins.genList (i: s (s (s (s "x${toString i}")))) 100)`, "(i: ", false},
	{"concatenation", big + `sum (builtins.genList (i: big + toString i) 100)`, "(i: big ", false},
	{"interpolation", big + `sum (builtins.genList (i: "${big}${toString i}") 100)`, "(i: ", false},
	{"toString", big + `sum (builtins.genList (i: toString [ big i ]) 100)`, "(i: ", false},
	{"toJSON", big + `builtins.stringLength (builtins.toJSON (builtins.genList (_: big) 1000))`, "builtins.stringLength (", true},
	{"json output", big + `builtins.genList (_: big) 1000`, "", true},
	{"genList", `builtins.length (builtins.genList (x: x) 40000000)`, "builtins.length (", false},
	{"nested lists", `builtins.length (builtins.foldl' (acc: x: [ acc x ]) [ ] (builtins.genList (x: x) 200000))`, "builtins.length (builtins.foldl' (acc: ", false},
	{"listToAttrs", `builtins.length (builtins.attrNames (builtins.listToAttrs (builtins.genList (i: { name = toString i; value = i; }) 250000)))`, "builtins.length (builtins.attrNames (", false},
}

// TestHostileChild is the child process of TestHostileMemory.
func TestHostileChild(t *testing.T) {
	src := os.Getenv(hostileChildEnv)
	if src == "" {
		t.Skip("child process of TestHostileMemory")
	}
	// A safety net for the machine, far above what is asserted: past
	// it the runtime dies instead of swapping the host to a halt.
	lim := &syscall.Rlimit{Cur: 4 << 30, Max: 4 << 30}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		t.Fatal(err)
	}
	_, err := evalString(t, src, Options{})
	fmt.Printf("ERROR: %v\nLIMIT: %v\n", err, errors.Is(err, ErrLimit))
}

// TestHostileMemory evaluates each hostile file in its own process and
// checks the error and the process's peak memory (its max RSS).
func TestHostileMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("max RSS in KiB and RLIMIT_AS as on Linux")
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostileChild$", "-test.v")
			cmd.Env = append(os.Environ(), hostileChildEnv+"="+h.src)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			rss := int64(-1)
			if cmd.ProcessState != nil {
				rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
			}
			t.Logf("peak RSS %d MB", rss>>20)
			if err != nil {
				t.Fatalf("child: %v\n%.2000s", err, out.String())
			}
			want := "evaluation built more than 67108864 bytes of values"
			if h.json {
				want += ", converting them to JSON"
			}
			if h.at != "" {
				want = fmt.Sprintf("test.nix:1:%d: %s", strings.Index(h.src, h.at)+len(h.at)+1, want)
			}
			if !bytes.Contains(out.Bytes(), []byte("ERROR: ")) || !bytes.Contains(out.Bytes(), []byte(want+"\nLIMIT: true\n")) {
				t.Errorf("child's error is not %q (ErrLimit):\n%.2000s", want, out.String())
			}
			if rss > 256<<20 {
				t.Errorf("peak RSS %d MB, want under 256 MB", rss>>20)
			}
		})
	}
}

// TestRealRulesWellUnderByteLimit: a large real-shaped rules file uses a
// small part of what the limit allows.
func TestRealRulesWellUnderByteLimit(t *testing.T) {
	ev := newEvaluator(context.Background(), Options{})
	ev.setRoot("", "/")
	e, err := Parse("bench.nix", "/", benchSource())
	if err != nil {
		t.Fatal(err)
	}
	v, err := ev.eval(e, ev.base)
	if err == nil {
		_, err = ev.toJSONValue(Pos{}, v)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a 1,000-entry rules file built %d bytes of values (%s of the limit)", ev.used, strconv.FormatFloat(100*float64(ev.used)/float64(ev.opts.MaxAlloc), 'f', 1, 64)+"%")
	if ev.used <= 0 || ev.used > ev.opts.MaxAlloc/10 {
		t.Errorf("built %d bytes, want some, and under a tenth of %d", ev.used, ev.opts.MaxAlloc)
	}
}
