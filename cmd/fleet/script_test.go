package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// runScripts runs the testscript files in testdata/<dir>, with env added to
// every script's environment and the shared custom commands (scriptCmds).
func runScripts(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", dir),
		Setup: func(e *testscript.Env) error {
			for k, v := range env {
				e.Setenv(k, v)
				// A regexp-quoted copy for stdout/stderr patterns.
				e.Setenv(k+"_RE", regexp.QuoteMeta(v))
			}
			return nil
		},
		Cmds: scriptCmds(),
	})
}

// scriptCmds are the custom commands every script may use:
//
//	exits N prog args...  run prog and require exit status N exactly
//	                      (stdout and stderr are kept for the next checks)
func scriptCmds() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"exits": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) < 2 {
				ts.Fatalf("usage: exits N prog args...")
			}
			want, err := strconv.Atoi(args[0])
			if err != nil {
				ts.Fatalf("exits: %v", err)
			}
			err = ts.Exec(args[1], args[2:]...)
			got := 0
			var xe *exec.ExitError
			if errors.As(err, &xe) {
				got = xe.ExitCode()
			} else if err != nil {
				ts.Fatalf("exits: %v", err)
			}
			if got != want {
				ts.Fatalf("%s exited %d, want %d", args[1], got, want)
			}
		},
	}
}

// TestCLIScripts covers the CLI frame: exit codes, usage errors, version.
func TestCLIScripts(t *testing.T) { runScripts(t, "cli", nil) }

// TestSpecScripts covers `fleet spec` from --host-spec files.
func TestSpecScripts(t *testing.T) { runScripts(t, "spec", nil) }

// withScriptCmds adds the shared commands to a script group's own.
func withScriptCmds(own map[string]func(ts *testscript.TestScript, neg bool, args []string)) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	for k, v := range scriptCmds() {
		own[k] = v
	}
	return own
}
