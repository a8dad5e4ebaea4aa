package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/go-multierror"

	"github.com/fleetnix/fleet/test/sshtest"
)

// TestEntriesThroughSymlinksOutside: entries that are inside the rules
// file's directory as written but lead out of it through a symlink (a
// linked directory, a linked file) are refused by rekey, listed as
// unreadable by ls, and the other directory's temp files are not swept;
// the other entries are rekeyed as usual.
func TestEntriesThroughSymlinksOutside(t *testing.T) {
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "repo", "secrets")
	other := filepath.Join(base, "other")
	for _, d := range []string{dir, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prod, err := Encrypt([]byte("PROD-SECRET"), []string{a.Line}, false)
	if err != nil {
		t.Fatal(err)
	}
	mine, _ := Encrypt([]byte("MINE"), []string{a.Line}, false)
	for p, b := range map[string][]byte{
		filepath.Join(other, "prod.age"):          prod,
		filepath.Join(other, TempPrefix+"x-1234"): []byte("not ours to sweep"),
		filepath.Join(dir, "ok.age"):              mine,
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../other", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../other/prod.age", filepath.Join(dir, "direct.age")); err != nil {
		t.Fatal(err)
	}
	to := []string{a.Line, b.Line}
	r := &Rules{Path: filepath.Join(dir, "secrets.nix"), Dir: dir, Entries: []Rule{
		{File: "direct.age", PublicKeys: to}, {File: "link/prod.age", PublicKeys: to}, {File: "ok.age", PublicKeys: to},
	}}
	ids, err := LoadIdentities([]string{a.Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Rekey(context.Background(), r, ids, RekeyOptions{All: true})
	var me *multierror.Error
	if !errors.As(err, &me) || len(me.Errors) != 2 {
		t.Fatalf("rekey: %v, want two errors", err)
	}
	var msgs []string
	for _, e := range me.Errors {
		if !errors.Is(e, ErrOutside) {
			t.Errorf("%v does not wrap ErrOutside", e)
		}
		msgs = append(msgs, e.Error())
	}
	slices.Sort(msgs)
	want := []string{
		"direct.age: resolves to " + filepath.Join(other, "prod.age") + ", outside the rules file's directory " + dir,
		"link/prod.age: resolves to " + filepath.Join(other, "prod.age") + ", outside the rules file's directory " + dir,
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("errors:\n%q\nwant\n%q", msgs, want)
	}
	if !slices.Equal(res.Rekeyed, []string{"ok.age"}) {
		t.Errorf("rekeyed %v, want only ok.age", res.Rekeyed)
	}
	if got, _ := os.ReadFile(filepath.Join(other, "prod.age")); !bytes.Equal(got, prod) {
		t.Error("the other directory's secret was rewritten")
	}
	if _, err := os.Stat(filepath.Join(other, TempPrefix+"x-1234")); err != nil {
		t.Errorf("the other directory's temp file was swept: %v", err)
	}
	if st, err := os.Lstat(filepath.Join(dir, "direct.age")); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("direct.age is no longer the symlink: %v", err)
	}
	for _, e := range r.Entries[:2] {
		fs := CheckEntry(r, e)
		if fs.Status != StatusUnreadable || fs.Problem != "resolves to "+filepath.Join(other, "prod.age")+", outside the rules file's directory "+dir {
			t.Errorf("ls %s: %s, %q", e.File, fs.Status, fs.Problem)
		}
	}
}
