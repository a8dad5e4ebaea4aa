package nixeval

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/testenv"
)

func evalString(t testing.TB, src string, opts Options) (string, error) {
	t.Helper()
	v, err := EvalStringJSON(context.Background(), "test.nix", "/tmp/nixeval-test", src, opts)
	if err != nil {
		return "", err
	}
	return string(MarshalJSON(v)), nil
}

func TestErrors(t *testing.T) {
	nix, _ := exec.LookPath("nix-instantiate")
	dir := t.TempDir()
	nixEnv := append(os.Environ(), "NIX_STATE_DIR="+dir+"/state", "HOME="+dir, "NIX_CONF_DIR="+dir)
	for _, tc := range []struct{ src, want string }{
		{"let x = y; in 1", "test.nix:1:9: undefined variable 'y'"},
		{"{ a = 1; a = 2; }", "test.nix:1:10: attribute 'a' already defined at test.nix:1:3"},
		{"{ a = 1", "test.nix:1:8: syntax error, unexpected end of file, expecting ';'"},
		{"{ a = 1; ", "test.nix:1:10: syntax error, unexpected end of file, expecting an attribute name or '}'"},
		{"[ 1 2", "test.nix:1:6: syntax error, unexpected end of file, expecting a list element or ']'"},
		{"if true then 1", "test.nix:1:15: syntax error, unexpected end of file, expecting 'else'"},
		{"\"abc", "test.nix:1:1: syntax error, unterminated string, expecting '\"'"},
		{"let f = { a }: a; in f { b = 1; }", "test.nix:1:22: function at test.nix:1:9 called without required argument 'a'"},
		{"let f = { a }: a; in f { a = 1; b = 1; }", "test.nix:1:22: function at test.nix:1:9 called with unexpected argument 'b'"},
		{"let x = x; in x", "test.nix:1:9: infinite recursion encountered"},
		{"rec { a = b; b = a; }.a", "test.nix:1:11: infinite recursion encountered"},
		{"1 + \"a\"", "test.nix:1:3: cannot add a string to an integer"},
		{"\"a\" + 1", "test.nix:1:5: cannot coerce an integer to a string"},
		{"\"${1}\"", "test.nix:1:4: cannot coerce an integer to a string"},
		{"builtins.head []", "test.nix:1:1: list index 0 is out of bounds"},
		{"{ }.a", "test.nix:1:1: attribute 'a' missing"},
		{"if 1 then 2 else 3", "test.nix:1:4: value is an integer while a Boolean was expected"},
		{"throw \"boom\"", "test.nix:1:1: boom"},
		{"abort \"stop\"", "test.nix:1:1: evaluation aborted with the following error message: 'stop'"},
		{"assert false; 1", "test.nix:1:1: assertion failed"},
		{"1 / 0", "test.nix:1:3: division by zero"},
		{"[ 1 ] ++ 3", "test.nix:1:7: value is an integer while a list was expected"},
		{"(x: x) 1 2", "test.nix:1:1: attempt to call something which is not a function but an integer"},
		{"builtins.readFile ./nonexistent/file", "test.nix:1:1: opening file '/tmp/nixeval-test/nonexistent/file': no such file or directory"},
		{"{ a = 1; } // 2", "test.nix:1:12: value is an integer while a set was expected"},
		{"x: x", "test.nix:1:1: cannot convert a function to JSON"},
		{"{ a.b = 1; a = 2; }", "test.nix:1:12: attribute 'a' already defined at test.nix:1:3"},
		{"1 == 2 == 3", "test.nix:1:8: syntax error, unexpected '==', expecting an expression end"},
		{"builtins.fromJSON \"{\"", "test.nix:1:1: cannot parse JSON: unexpected EOF"},
		{"~/x", "test.nix:1:1: home path '~/x' is not supported by the built-in evaluator"},
	} {
		_, err := evalString(t, tc.src, Options{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.src, err, tc.want)
		}
		// Real Nix must reject the same expressions.
		if nix != "" {
			cmd := exec.Command(nix, "--readonly-mode", "--eval", "--strict", "--json", "-E", tc.src)
			cmd.Env, cmd.Dir = nixEnv, dir
			if out, err := cmd.Output(); err == nil {
				t.Errorf("%s: nix-instantiate accepts it: %s", tc.src, out)
			}
		}
	}
}

func TestUnsupported(t *testing.T) {
	for _, tc := range []struct{ src, name string }{
		{`builtins.getFlake "github:x/y"`, "builtins.getFlake"},
		{`(import <nixpkgs> { }).lib`, "<nixpkgs>"},
		{`let lib = (import <nixpkgs> {}).lib; in lib.genAttrs [ "a" ] (x: 1)`, "<nixpkgs>"},
		{`builtins.fetchGit { url = "x"; }`, "builtins.fetchGit"},
		{`builtins.noSuchBuiltin`, "builtins.noSuchBuiltin"},
		{`derivation { }`, "builtins.derivation"},
		{`builtins.currentSystem`, "builtins.currentSystem"},
		{`builtins.fromTOML "d = 1979-05-27"`, "TOML date"},
	} {
		_, err := evalString(t, tc.src, Options{})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %v, want ErrUnsupported", tc.src, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: error %q does not name %q", tc.src, err, tc.name)
		}
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		src  string
		opts Options
		want string
	}{
		{"let f = x: f x; in f 1", Options{}, "stack overflow"},
		{"let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 100000", Options{}, "stack overflow"},
		{strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000), Options{}, "nested too deeply"},
		{strings.Repeat("[", 5000) + strings.Repeat("]", 5000), Options{}, "nested too deeply"},
		{"builtins.genList (x: x) 100000000", Options{}, "list longer than"},
		{"builtins.foldl' (a: b: a + a) \"xx\" (builtins.genList (x: x) 40)", Options{MaxBytes: 1 << 20}, "test.nix:1:26: string longer than 1048576 bytes"},
		{"builtins.foldl' (a: b: a + a) \"xx\" (builtins.genList (x: x) 40)", Options{MaxAlloc: 1 << 20}, "test.nix:1:26: evaluation built more than 1048576 bytes of values"},
		{"builtins.length (builtins.genList (x: x) 100000)", Options{MaxSteps: 150000}, ""}, // lazy: elements never evaluated
		{"builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100000)", Options{MaxSteps: 1000}, "more than 1000 steps"},
	} {
		start := time.Now()
		out, err := evalString(t, tc.src, tc.opts)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%.40s: %v", tc.src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.40s: got %v (%.40s), want error containing %q", tc.src, err, out, tc.want)
		}
		if tc.want != "" && !errors.Is(err, ErrLimit) {
			t.Errorf("%.40s: %v is not ErrLimit", tc.src, err)
		}
		t.Logf("%.30s: %v in %v", tc.src, err, time.Since(start))
	}
}

func TestInfiniteRecursionIsNotLimit(t *testing.T) {
	_, err := evalString(t, "let a = { x = a.x; }; in a.x", Options{})
	if err == nil || !strings.HasSuffix(err.Error(), "infinite recursion encountered") || errors.Is(err, ErrLimit) {
		t.Fatalf("got %v", err)
	}
}

// TestExprDifferential compares small expressions with real Nix.
func TestExprDifferential(t *testing.T) {
	testenv.Programs(t, "nix-instantiate")
	dir := t.TempDir()
	env := append(os.Environ(), "NIX_STATE_DIR="+dir+"/state", "HOME="+dir, "NIX_CONF_DIR="+dir)
	exprs := []string{
		`[ (-7 / 2) (7 / -2) (-0.0) (1.0e300 * 10.0) ]`,
		`{ a = 9007199254740993; b = 0.30000000000000004; c = 1.0e21; d = 123456.7; e = 1234567.8; f = 0.0001; g = 0.00001; }`,
		`"a\"b\\c\u0001\x7f${"\t"}"`,
		`''
		   tabs	are not indentation
		''`,
		`''a
		  b''`,
		`''  ${"x"}  ''`,
		`builtins.toJSON { "\n" = [ null ]; }`,
		`builtins.split "(.)" ""`,
		`builtins.split "" "ab"`,
		`builtins.match "(a*)(b*)" "aab"`,
		`builtins.replaceStrings [ "a" "aa" ] [ "1" "2" ] "aaa"`,
		`builtins.replaceStrings [ "" ] [ "-" ] "abc"`,
		`builtins.replaceStrings [ "b" "" ] [ "B" "-" ] "abcb"`,
		`builtins.replaceStrings [ "xy" "y" ] [ "1" "2" ] "axyyxzy"`,
		`builtins.replaceStrings [ "ssh-ed25519 " ] [ "" ] "ssh-ed25519 AAAA alice\n"`,
		`builtins.replaceStrings [ ] [ ] "abc"`,
		`builtins.replaceStrings [ "abc" ] [ "x" ] ""`,
		`builtins.substring 1 (-1) "hello"`,
		`builtins.substring 10 2 "hello"`,
		`toString [ 1 [ ] [ 2 ] "x" null true ]`,
		`let a = { x = 1; }; in a // { y = a.x; }`,
		`builtins.listToAttrs [ { name = "a"; value = 1; } { name = "a"; value = 2; } ]`,
		`builtins.attrNames { b = 1; a = 2; "B" = 3; "_" = 4; "1" = 5; }`,
		`builtins.sort (a: b: a > b) [ 3 1 2 3 ]`,
		`with { a = 1; }; with { a = 2; }; a`,
		`let a = 1; in with { a = 2; }; a`,
		`({ a ? b, b ? 2 }: a) { }`,
		`(args@{ ... }: args) { x = 1; }`,
		`rec { a = 1; b = { c = a; }; }`,
		`{ a.b.c = 1; a.b.d = 2; a.e = 3; }`,
		`let x = { inherit (builtins) head; }; in x.head [ 5 ]`,
		`builtins.fromJSON "[1e2, 1.5, -0, 1E-2, \"\\u00e9\"]"`,
		`builtins.concatStringsSep "" (map toString [ 1.0 0.1 100.5 ])`,
		`1.0 == 1`,
		`[ (1 < 1.5) ("b" > "a") (./. == ./.) ]`,
		`builtins.typeOf (builtins.div 4 2.0)`,
		`builtins.hashString "sha1" "x"`,
		`builtins.split "(a*)" "baab"`,
		`builtins.split "a*" "xaaya"`,
		`builtins.split ",|;" "a,b;;c"`,
		`builtins.split "^a" "aaa"`,
		`builtins.match "(a|ab)(c|bcd)(d*)" "abcd"`,
		`builtins.split "[[:space:]]+" " a  b "`,
		`{ a = x:x; b = https://example.com/a?b=c&d=e; c = (x: x) 1; }`,
		`{ s = { __toString = s: "str"; x = 1; }; o = { outPath = "/p"; }; }`,
		`{ a = 1.; b = .5; c = 0.5e2; d = 5.0E-1; }`,
	}
	for _, src := range exprs {
		cmd := exec.Command("nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", "-E", src)
		cmd.Env, cmd.Dir = env, dir
		want, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: nix-instantiate: %v", src, err)
			continue
		}
		v, err := EvalStringJSON(context.Background(), "expr.nix", dir, src, Options{})
		if err != nil {
			t.Errorf("%s: builtin: %v", src, err)
			continue
		}
		if got := MarshalJSON(v); !bytes.Equal(got, bytes.TrimSpace(want)) {
			t.Errorf("%s:\n nix:     %s\n builtin: %s", src, bytes.TrimSpace(want), got)
		}
	}
}

func FuzzEval(f *testing.F) {
	seeds, _ := filepath.Glob("../secrets/testdata/rules/*.nix")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(string(b))
		}
	}
	for _, s := range []string{`let f = x: f x; in f 1`, `''${x}''`, `{ a.b = 1; }.a ? b`, `rec { a = [ a ]; }`, `x@{ y ? x, ... }: y`} {
		f.Add(s)
	}
	dir, _ := filepath.Abs("../secrets/testdata/rules")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := EvalStringJSON(ctx, "fuzz.nix", dir, src, Options{MaxDepth: 2000, MaxSteps: 200000, MaxBytes: 1 << 20})
		if err == nil {
			MarshalJSON(v)
		} else if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
	})
}

// TestScoping checks shadowing where lazy sharing of variables could go
// wrong (the inner binding must win however the map is iterated).
func TestScoping(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"let b = 1; in let a = b; b = 2; in a", "2"},
		{"let b = 1; in rec { a = b; b = 2; }.a", "2"},
		{"let b = 1; in { a = b; b = 2; }.a", "1"},
		{"let b = 1; in let inherit b; in let b = 3; c = b; in c", "3"},
		{"let x = 1; f = x: x; in f 2", "2"},
		{"with { x = 1; }; let y = x; x = 2; in y", "2"},
	} {
		for i := 0; i < 20; i++ {
			got, err := evalString(t, tc.src, Options{})
			if err != nil || got != tc.want {
				t.Fatalf("%s = %s, %v; want %s", tc.src, got, err, tc.want)
			}
		}
	}
}

// TestAllocationBounded: building huge values lazily still counts.
func TestAllocationBounded(t *testing.T) {
	src := `builtins.length (builtins.concatLists (builtins.genList (x: builtins.genList (y: y) 1000000) 1000))`
	_, err := evalString(t, src, Options{MaxSteps: 100000})
	if !errors.Is(err, ErrLimit) || !strings.HasSuffix(err.Error(), "evaluation took more than 100000 steps") {
		t.Fatalf("got %v", err)
	}
}

func TestFormalDefaultsScope(t *testing.T) {
	for i := 0; i < 20; i++ {
		got, err := evalString(t, "let b = 1; in ({ a ? b, b ? 2 }: a) { }", Options{})
		if err != nil || got != "2" {
			t.Fatalf("got %s, %v; want 2 (the default of b, not the outer b)", got, err)
		}
	}
}

func benchSource() string {
	var b strings.Builder
	b.WriteString("let\n  admins = [ \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMLySPOW2Nr5nCmmo5skMh8D\" ];\nin\n{\n")
	for i := 0; i < 1000; i++ {
		b.WriteString("  \"hosts/h" + strconv.Itoa(i) + "/secret.age\".publicKeys = admins ++ [ \"age1yvdxa70wd6vsc4e7lg3c28lsyggjr5yw8sqzlqwa0es88wxf4ylqq9dkee\" ];\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// BenchmarkParse1000 parses a 1,000-entry rules file.
func BenchmarkParse1000(b *testing.B) {
	src := benchSource()
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse("bench.nix", "/", src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvalJSON1000 parses, evaluates and prints a 1,000-entry rules file.
func BenchmarkEvalJSON1000(b *testing.B) {
	src := benchSource()
	for i := 0; i < b.N; i++ {
		v, err := EvalStringJSON(context.Background(), "bench.nix", "/", src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		MarshalJSON(v)
	}
}
