package nixeval

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"
)

// nixJSONError runs the real nix-instantiate on file and returns its
// error the way this package words errors: "file:line:col: message", or
// the message alone when Nix gives no position.
func nixJSONError(t *testing.T, dir, file string) string {
	t.Helper()
	cmd := exec.Command("nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", file)
	cmd.Env = append(os.Environ(), "NIX_STATE_DIR="+dir+"/state", "HOME="+dir, "NIX_CONF_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err == nil {
		t.Fatalf("%s: nix-instantiate accepts it: %s", file, out)
	}
	msg := regexp.MustCompile(`(?m)^error: (.*)$`).FindStringSubmatch(stderr.String())
	if msg == nil {
		t.Fatalf("%s: no error line in nix's output: %s", file, stderr.String())
	}
	if at := regexp.MustCompile(`(?m)^\s+at (/\S+):(\d+):(\d+):$`).FindStringSubmatch(stderr.String()); at != nil {
		return at[1] + ":" + at[2] + ":" + at[3] + ": " + msg[1]
	}
	return msg[1]
}

// TestFunctionInJSONDifferential: a function that reaches the JSON output
// is an error naming the file:line:column real Nix names (the lambda, or
// for a built-in the attribute holding it), in Nix's words.
func TestFunctionInJSONDifferential(t *testing.T) {
	testenv.Programs(t, "nix-instantiate")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fn.nix"), []byte("# a function\nx: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, src := range []string{
		"{\n  \"a.age\" = {\n    publicKeys = [ \"k\" ];\n    f = x: x;\n  };\n}\n",
		`{ a = builtins.head; }`,
		`let f = x: x; in [ f ]`,
		`[ builtins.head ]`,
		`builtins.head`,
		`x: x`,
		`{ a = [ builtins.head ]; }`,
		`{ a = { b = [ [ (x: x) ] ]; }; }`,
		`{ a.b = builtins.head; }`,
		`{ a.b.c = x: x; }`,
		`let s = { a = builtins.head; }; in [ s ]`,
		`{ x = builtins.toJSON [ builtins.head ]; }`,
		`{ a = builtins.map (x: x); }`,
		`{ a = builtins.foldl' (a: b: a) 0; }`,
		`{ a = builtins.mapAttrs (n: v: v) { x = builtins.head; }; }`,
		"builtins.listToAttrs [\n  { name = \"a\";\n    value = builtins.head; }\n]",
		`{ a = 1; } // { b = builtins.head; }`,
		`{ inherit (builtins) head; }`,
		`let head = builtins.head; in { z = 1; inherit head; }`,
		`rec { a = builtins.attrNames; b = a; }`,
		`{ f = { __functor = self: x: x; }; }`,
		`{ "a.age".publicKeys = [ "k" ]; "b.age" = import ./fn.nix; }`,
		`{ a = builtins.removeAttrs { x = builtins.head; y = 1; } [ "y" ]; }`,
		`{ a = builtins.intersectAttrs { x = 1; } { x = builtins.head; }; }`,
		`{ a = (builtins.fromJSON "{}") // { x = builtins.head; }; }`,
		`{ a = map (x: { f = y: y; }) [ 1 ]; }`,
		`{ ${"dyn"} = x: x; }`,
		`let f = { a ? 1 }: a; in { inherit f; }`,
		`{ a = builtins.attrValues { x = builtins.head; }; }`,
	} {
		file := filepath.Join(dir, "case"+strings.Repeat("x", i)+".nix")
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		want := nixJSONError(t, dir, file)
		_, err := EvalFileJSON(context.Background(), file, Options{})
		if err == nil || err.Error() != want {
			t.Errorf("%s:\n got %v\nwant %s", src, err, want)
		}
	}
}
