// Command demo shows fleet doing its job the way a user would: it builds
// fleet, sets up the example fleet (examples/homelab, through
// test/homelab), boots an installer VM (test/rig, used as a library),
// and runs `fleet install ...` as a subprocess with fleet's own output on
// the terminal, ending with fleet's phase table and first-boot table.
// It exits non-zero when anything fails.
//
// Usage (as root; scripts/demo installs the Debian packages first):
//
//	go run ./test/demo [SCENARIO]
//
// SCENARIO is one of [scenarios] (default nas); "demo -list" lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fleetnix/fleet/test/testenv"
)

func main() {
	list := flag.Bool("list", false, "list the scenarios")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: scripts/demo [SCENARIO]\n\nscenarios:\n%s", scenarioList())
	}
	flag.Parse()
	if *list {
		fmt.Print(scenarioList())
		return
	}
	name := "nas"
	switch flag.NArg() {
	case 0:
	case 1:
		name = flag.Arg(0)
	default:
		flag.Usage()
		os.Exit(2)
	}
	sc, err := lookup(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(2)
	}
	repo, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The rig's own log lines (boot times, the serial console of a failed
	// boot) go to stderr, indented under the step that made them.
	p := testenv.NewProgram("fleet-demo", indent{os.Stderr})
	err = p.Run(ctx, func(ctx context.Context, t testenv.TB) error {
		return sc.run(ctx, &demo{t: t, repo: repo, name: sc.name})
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(os.Stderr, "\ndemo %s failed: %v\n", sc.name, err)
		os.Exit(1)
	}
}

// repoRoot is the fleet checkout the demo runs in: the nearest directory
// up from here with fleet's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/fleetnix/fleet\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside a fleet checkout: run it from one (scripts/demo does)")
		}
		dir = parent
	}
}

// indent writes each line it gets indented by four spaces.
type indent struct{ w *os.File }

func (i indent) Write(p []byte) (int, error) {
	s := strings.TrimRight(string(p), "\n")
	_, err := fmt.Fprintf(i.w, "    %s\n", strings.ReplaceAll(s, "\n", "\n    "))
	return len(p), err
}
