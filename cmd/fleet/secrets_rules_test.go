package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"
)

// TestSecretsRulesScripts covers `fleet secrets rules`: listing, --json
// byte-identical to nix-instantiate, RULES, evaluator choice, errors.
func TestSecretsRulesScripts(t *testing.T) { runScripts(t, "secrets_rules", nil) }

// TestRulesJSONIsNixs: `fleet secrets rules --json` prints what
// nix-instantiate prints, byte for byte, for every rules file of the
// secrets package's corpus, the repositories laid out like real ones
// (keys in ../keys, keys.nix imports, ...) and the files ls, edit and
// rekey refuse (a duplicate recipient, an empty key, an entry outside
// the directory): the JSON checks nothing.
func TestRulesJSONIsNixs(t *testing.T) {
	testenv.Programs(t, "nix-instantiate")
	var files []string
	for _, pat := range []string{"*.nix", "invalid/*.nix"} {
		m, _ := filepath.Glob(filepath.Join("..", "..", "secrets", "testdata", "rules", pat))
		files = append(files, m...)
	}
	repos, _ := filepath.Glob(filepath.Join("..", "..", "secrets", "testdata", "repos", "*"))
	for _, r := range repos {
		filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == "secrets.nix" {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 70 {
		t.Fatalf("%d rules files, want >= 70", len(files))
	}
	dir := t.TempDir()
	env := append(os.Environ(), "NIX_STATE_DIR="+dir+"/state", "HOME="+dir, "NIX_CONF_DIR="+dir)
	for _, f := range files {
		cmd := exec.Command("nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", f)
		cmd.Env = env
		want, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: nix-instantiate: %v", f, err)
			continue
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"secrets", "rules", "--json", "--evaluator", "builtin", "--rules", f}, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit %d: %s", f, code, stderr.String())
			continue
		}
		if !bytes.Equal(stdout.Bytes(), want) && !bytes.Equal(stdout.Bytes(), append(bytes.TrimSpace(want), '\n')) {
			t.Errorf("%s:\nnix:   %s\nfleet: %s", f, want, stdout.Bytes())
		}
	}
}
