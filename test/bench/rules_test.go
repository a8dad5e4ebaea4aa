package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/secrets"
)

// TestRules: loading (evaluating and validating) a 1,000-entry secrets.nix
// with fleet's built-in evaluator and with `nix-instantiate --eval --strict
// --json`, which agenix and fleet --evaluator nix run. Half the entries are
// written out, half generated with listToAttrs and genList; keys come from
// an imported file and a readFile, as real rules files do.
func TestRules(t *testing.T) {
	Require(t)
	need(t, "nix-instantiate")
	// nix-bin 2.8 as root without a daemon: a private state directory and
	// the empty build-users-group; --readonly-mode writes no store paths.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	t.Setenv("NIX_STATE_DIR", filepath.Join(home, "state"))
	t.Setenv("NIX_CONF_DIR", home)
	t.Setenv("NIX_REMOTE", "")
	t.Setenv("NIX_CONFIG", "build-users-group =")
	f := writeRules1000(t)
	ctx := context.Background()
	load := func(ev secrets.Evaluator) (*secrets.Rules, error) {
		r, err := secrets.LoadRules(ctx, f, ev)
		if err == nil && len(r.Entries) != 1000 {
			err = fmt.Errorf("%d entries, want 1000", len(r.Entries))
		}
		return r, err
	}
	// Both evaluators must read the file the same way.
	b, err := load(secrets.EvalBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	n, err := load(secrets.EvalNix)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Raw, n.Raw) || !reflect.DeepEqual(b.Entries, n.Entries) {
		t.Fatal("the built-in evaluator and nix-instantiate disagree on the rules file")
	}
	rows := Measure(t, nil, []Contender{
		{Name: "fleet (built-in evaluator)", Run: func() error { _, err := load(secrets.EvalBuiltin); return err }},
		{Name: "nix-instantiate --eval --strict --json", Run: func() error { _, err := load(secrets.EvalNix); return err }},
	})
	Record(t, Table("Loading a 1,000-entry secrets.nix", rows, 0))
}

// writeRules1000 writes a secrets.nix of 1,000 entries next to the keys it
// imports and reads (from the secrets package's test corpus).
func writeRules1000(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{"pubkeys/nas.pub": "nas.pub", "keys/users.nix": "users.nix"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "secrets", "testdata", "rules", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var s strings.Builder
	s.WriteString("let\n  users = import ./users.nix;\n  nas = builtins.readFile ./nas.pub;\n  admins = [ users.alice users.bob ];\nin\n{\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&s, "  \"hosts/h%d/secret.age\".publicKeys = admins ++ [ nas ];\n", i)
	}
	s.WriteString("} // builtins.listToAttrs (map (i: {\n  name = \"gen/s${toString i}.age\";\n  value = { publicKeys = [ users.alice users.carol ]; armor = i / 2 * 2 == i; };\n}) (builtins.genList (i: i) 500))\n")
	f := filepath.Join(dir, "secrets.nix")
	if err := os.WriteFile(f, []byte(s.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
