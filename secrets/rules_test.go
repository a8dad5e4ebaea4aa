package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/fleetnix/fleet/nixeval"
)

// nixEnv makes nix-instantiate run as any user without a daemon or a
// writable store: state and home in a temp dir; --readonly-mode (passed
// by evalNix and realNix) keeps it from touching /nix/var.
func nixEnv(t testing.TB) []string {
	t.Helper()
	dir := t.TempDir()
	return append(os.Environ(), "NIX_STATE_DIR="+dir+"/state", "HOME="+dir, "NIX_CONF_DIR="+dir, "NIX_REMOTE=")
}

func needNix(t testing.TB) {
	t.Helper()
	testenv.Programs(t, "nix-instantiate")
}

// realNix runs the real nix-instantiate on file and returns its stdout.
func realNix(t testing.TB, env []string, file string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", file)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &nixErr{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type nixErr struct {
	err    error
	stderr string
}

func (e *nixErr) Error() string { return e.err.Error() + ": " + e.stderr }

// corpus is every valid-looking rules file of testdata: the single files
// of testdata/rules, and the secrets.nix of each repository laid out
// under testdata/repos (keys in ../keys, imports of keys.nix, ...).
func corpus(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"testdata/rules/*.nix", "testdata/repos/*/secrets.nix", "testdata/repos/*/secrets/secrets.nix", "testdata/repos/*/*/secrets/*/secrets.nix"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 53 {
		t.Fatalf("corpus has %d files, want >= 53", len(files))
	}
	return files
}

// TestDifferentialNix evaluates every rules file of the corpus with the
// built-in evaluator and with real nix-instantiate, and wants the same
// JSON value and the same bytes.
func TestDifferentialNix(t *testing.T) {
	needNix(t)
	env := nixEnv(t)
	for _, f := range corpus(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, err := realNix(t, env, f)
			if err != nil {
				t.Fatalf("nix-instantiate: %v", err)
			}
			got, err := nixeval.EvalFileJSON(context.Background(), f, nixeval.Options{})
			if err != nil {
				t.Fatalf("builtin: %v", err)
			}
			wantV, err := DecodeJSON(want)
			if err != nil {
				t.Fatal(err)
			}
			gotV, err := DecodeJSON(nixeval.MarshalJSON(got))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotV, wantV) {
				t.Errorf("values differ\nnix:     %s\nbuiltin: %s", want, nixeval.MarshalJSON(got))
			}
			if g := nixeval.MarshalJSON(got); !bytes.Equal(g, bytes.TrimSpace(want)) {
				t.Errorf("bytes differ\nnix:     %s\nbuiltin: %s", want, g)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	const hint = "\nhint: use ssh-ed25519, ssh-rsa (>= 2048 bits) or age1 keys"
	const inside = "\nhint: name the file relative to the rules file, inside its directory"
	for _, tc := range []struct{ file, want string }{
		{"abs.nix", `"/srv/other/prod.age": an absolute path: the file must be inside the rules file's directory` + inside},
		{"climb.nix", `"../other/prod.age": climbs out of the rules file's directory` + inside},
		{"climb-inner.nix", `"hosts/../../other/prod.age": climbs out of the rules file's directory` + inside},
		{"dot.nix", `"hosts/..": names the rules file's directory, not a file` + inside},
		{"same-file.nix", `"hosts/nas.age": names the same file as "./hosts/nas.age"` + "\nhint: " + `keep one entry per file`},
		{"empty-key.nix", `"e.age": publicKeys[1]: not a recipient fleet can use (""): unknown recipient type` + hint},
		{"armor.nix", `"a.age": armor: must be a bool, got a string` + "\nhint: " + `write armor = true; or armor = false;`},
		{"dsa.nix", `"nas.age": publicKeys[1]: not a recipient fleet can use ("ssh-dss AAAAB3NzaC1k..."): unsupported ssh key type ssh-dss` + hint},
		{"dup-newline.nix", `"d.age": publicKeys[1]: same recipient as publicKeys[0] ("ssh-ed25519 AAAAC3Nz...")` + "\nhint: " + `remove the duplicate`},
		{"dup.nix", `"d.age": publicKeys[2]: same recipient as publicKeys[0] ("ssh-ed25519 AAAAC3Nz...")` + "\nhint: " + `remove the duplicate`},
		{"ecdsa.nix", `"e.age": publicKeys[0]: not a recipient fleet can use ("ecdsa-sha2-nistp256 ..."): unsupported ssh key type ecdsa-sha2-nistp256` + hint},
		{"empty.nix", `"e.age": publicKeys: empty list` + "\nhint: " + `add at least one recipient`},
		{"entry-notset.nix", `"a.age": must be an attribute set with publicKeys, got a list` + "\nhint: " + `write "a.age".publicKeys = [ ... ];`},
		{"garbage.nix", `"g.age": publicKeys[0]: not a recipient fleet can use ("age1notavalidkey"): malformed age1 recipient` + hint},
		{"missing.nix", `"m.age": publicKeys: missing` + "\nhint: " + `add publicKeys = [ "ssh-ed25519 ..." ];`},
		{"notlist.nix", `"a.age": publicKeys: must be a list of strings, got a string`},
		{"notset.nix", `the rules must be an attribute set, got a list` + "\nhint: " + `write { "file.age".publicKeys = [ "ssh-ed25519 ..." ]; }`},
		{"notstring.nix", `"a.age": publicKeys[1]: must be a string, got a number`},
		{"pq-bad.nix", `"g.age": publicKeys[0]: not a recipient fleet can use ("age1pq1xyz"): malformed age1pq1 recipient` + hint},
		{"rsa1024.nix", `"old.age": publicKeys[0]: not a recipient fleet can use ("ssh-rsa AAAAB3NzaC1y..."): ssh-rsa key of 1024 bits is too short` + hint},
	} {
		path := filepath.Join("testdata/rules/invalid", tc.file)
		evs := []Evaluator{EvalBuiltin}
		if _, err := exec.LookPath("nix-instantiate"); err == nil {
			evs = append(evs, EvalNix)
		}
		for _, ev := range evs {
			r, err := LoadRules(context.Background(), path, ev)
			if !errors.Is(err, ErrInvalidRules) {
				t.Errorf("%s (%s): got %v, %v; want ErrInvalidRules", tc.file, ev, r, err)
				continue
			}
			if want := path + ": " + tc.want; err.Error() != want {
				t.Errorf("%s (%s):\n got %s\nwant %s", tc.file, ev, err, want)
			}
		}
	}
}

// TestLoadRulesAgree loads every corpus file with both evaluators: the
// same files must validate, to the same entries, or fail the same way.
func TestLoadRulesAgree(t *testing.T) {
	needNix(t)
	valid := 0
	for _, f := range corpus(t) {
		rb, errB := LoadRules(context.Background(), f, EvalBuiltin)
		rn, errN := LoadRules(context.Background(), f, EvalNix)
		if (errB == nil) != (errN == nil) || errB != nil && errB.Error() != errN.Error() {
			t.Errorf("%s: builtin: %v; nix: %v", f, errB, errN)
			continue
		}
		if errB != nil {
			if !errors.Is(errB, ErrInvalidRules) {
				t.Errorf("%s: %v is not ErrInvalidRules", f, errB)
			}
			continue
		}
		valid++
		if !reflect.DeepEqual(rb.Entries, rn.Entries) {
			t.Errorf("%s: entries differ:\nbuiltin %v\nnix     %v", f, rb.Entries, rn.Entries)
		}
	}
	if valid < 20 {
		t.Errorf("only %d corpus files are valid rules, want >= 20", valid)
	}
}

func TestLoadRulesEntries(t *testing.T) {
	r, err := LoadRules(context.Background(), "testdata/rules/31-age-keys.nix", EvalBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range r.Entries {
		files = append(files, e.File)
	}
	if want := []string{"plugin.age", "pq.age", "rsa.age", "x25519.age"}; !reflect.DeepEqual(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	rsa, _ := r.Lookup("rsa.age")
	pub, _ := os.ReadFile("testdata/rules/pubkeys/rsa2048.pub")
	if len(rsa.PublicKeys) != 1 || rsa.PublicKeys[0] != strings.TrimSpace(string(pub)) {
		t.Errorf("rsa.age keys %q, want the trimmed .pub file", rsa.PublicKeys)
	}
	r, err = LoadRules(context.Background(), "testdata/rules/02-let-keys.nix", EvalAuto)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata/rules/armored-secret.age")
	for _, name := range []string{"armored-secret.age", "./armored-secret.age", abs} {
		e, ok := r.Lookup(name)
		if !ok || !e.Armor || e.File != "armored-secret.age" {
			t.Errorf("Lookup(%q) = %+v, %v", name, e, ok)
		}
	}
	for _, name := range []string{"nope.age", "/elsewhere/armored-secret.age", "../armored-secret.age"} {
		if e, ok := r.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, want not found", name, e)
		}
	}
	if s1, _ := r.Lookup("secret1.age"); s1.Armor || len(s1.PublicKeys) != 2 {
		t.Errorf("secret1.age = %+v", s1)
	}
}

// TestAutoFallback: builtins.currentSystem is impure and unsupported:
// builtin refuses with ErrUnsupported, auto falls back to
// nix-instantiate, and without Nix auto says what to do.
func TestAutoFallback(t *testing.T) {
	f := "testdata/rules/special/impure.nix"
	_, err := LoadRules(context.Background(), f, EvalBuiltin)
	if want := "read rules: " + f + ":2:125: builtins.currentSystem is not supported by the built-in evaluator\nhint: use --evaluator auto or nix (needs nix-instantiate)"; !errors.Is(err, nixeval.ErrUnsupported) || err.Error() != want {
		t.Fatalf("builtin: got %v\nwant ErrUnsupported: %s", err, want)
	}
	needNix(t)
	r, err := LoadRules(context.Background(), f, EvalAuto)
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	e := r.Raw.(map[string]any)["f.age"].(map[string]any)
	if src, sys := e["source"].(string), e["system"].(string); !strings.HasPrefix(src, "/nix/store/") || !strings.HasSuffix(src, "-alice.pub") || sys == "" {
		t.Errorf("source = %q, system = %q: want nix's values", src, sys)
	}
	old := NixInstantiate
	NixInstantiate = "/nonexistent/nix-instantiate"
	defer func() { NixInstantiate = old }()
	_, err = LoadRules(context.Background(), f, EvalAuto)
	if !errors.Is(err, nixeval.ErrUnsupported) || !strings.HasSuffix(err.Error(), "built-in evaluator\nhint: install Nix (nix-instantiate) to read this file") {
		t.Errorf("auto without nix: got %v", err)
	}
}

func TestDefaultRulesPath(t *testing.T) {
	t.Setenv("RULES", "")
	if got := DefaultRulesPath(); got != "./secrets.nix" {
		t.Errorf("got %q", got)
	}
	t.Setenv("RULES", "/etc/x/secrets.nix")
	if got := DefaultRulesPath(); got != "/etc/x/secrets.nix" {
		t.Errorf("got %q", got)
	}
}

func TestEvalNixError(t *testing.T) {
	needNix(t)
	_, err := LoadRules(context.Background(), "testdata/rules/missing-file.nix", EvalNix)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want not exist", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "secrets.nix")
	os.WriteFile(bad, []byte("{ a = ; }"), 0o644)
	_, err = LoadRules(context.Background(), bad, EvalNix)
	if err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("got %v, want nix's syntax error", err)
	}
	_, err = LoadRules(context.Background(), bad, EvalBuiltin)
	if want := bad + ":1:7: syntax error, unexpected ';', expecting an expression"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("builtin: got %v, want suffix %s", err, want)
	}
}

// TestRawSameForBothEvaluators: callers get identical Go values in Raw.
func TestRawSameForBothEvaluators(t *testing.T) {
	needNix(t)
	for _, f := range []string{"testdata/rules/20-arith.nix", "testdata/rules/14-fromjson.nix", "testdata/rules/46-store-paths.nix"} {
		b, err := EvalRules(context.Background(), f, EvalBuiltin)
		if err != nil {
			t.Fatal(err)
		}
		n, err := EvalRules(context.Background(), f, EvalNix)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, n) {
			t.Errorf("%s: Raw differs:\nbuiltin %#v\nnix     %#v", f, b, n)
		}
	}
}
