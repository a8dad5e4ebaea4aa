package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestRekey: 1,000 secrets encrypted to one key, rekeyed to five
// recipients (four ssh-ed25519 keys and an age X25519 key). fleet rekeys
// them in process, in parallel; agenix runs one `age -d` and one
// `age -r ...` process per file, one file after the other. The third row is
// fleet's default on the next run: only files whose recipients changed are
// rewritten, so an unchanged set costs reading 1,000 headers.
func TestRekey(t *testing.T) {
	Require(t)
	need(t, "age", "age-keygen")
	const n = 1000
	var keys []sshtest.Key
	for i := 0; i < 4; i++ {
		keys = append(keys, sshtest.NewKey(t, "ed25519", "", fmt.Sprint("k", i)))
	}
	ageID, ageRecipient := ageKeygen(t)
	to := []string{keys[0].Line, keys[1].Line, keys[2].Line, keys[3].Line, ageRecipient}
	ids, err := secrets.LoadIdentities([]string{keys[0].Path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every file of the new set must open with the age key: it is one of
	// the five new recipients and none of the old one.
	check, err := secrets.LoadIdentities([]string{ageID}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The set as it is before rekeying, made once and copied before each
	// run (1 in 7 armored, as a real set mixes them).
	pristine := t.TempDir()
	plain := map[string][]byte{}
	var entries []secrets.Rule
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%04d.age", i)
		pt := []byte(fmt.Sprintf("PLAINTEXT-%04d", i))
		ct, err := secrets.Encrypt(pt, []string{keys[0].Line}, i%7 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pristine, name), ct, 0o600); err != nil {
			t.Fatal(err)
		}
		plain[name] = pt
		entries = append(entries, secrets.Rule{File: name, PublicKeys: to})
	}
	work := &secrets.Rules{Dir: filepath.Join(t.TempDir(), "work"), Entries: entries}
	// The same on tmpfs, where fsync costs nothing: what is left is the
	// cryptography.
	shm, err := os.MkdirTemp("/dev/shm", "fleet-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	onTmpfs := &secrets.Rules{Dir: filepath.Join(shm, "work"), Entries: entries}
	done := &secrets.Rules{Dir: filepath.Join(t.TempDir(), "done"), Entries: entries}
	copyDir(t, pristine, done.Dir)
	if res, err := secrets.Rekey(context.Background(), done, ids, secrets.RekeyOptions{}); err != nil || len(res.Rekeyed) != n {
		t.Fatalf("rekey the already-rekeyed set: %v, %d rekeyed", err, len(res.Rekeyed))
	}
	verify := func(dir string) {
		for name, pt := range plain {
			got, err := secrets.DecryptFile(filepath.Join(dir, name), check)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s after rekey: %q, %v", name, got, err)
			}
		}
	}
	verify(done.Dir)

	// Between runs: check what the last one wrote, then start again from
	// the old set.
	dirty := ""
	setup := func() {
		if dirty != "" {
			verify(dirty)
			os.RemoveAll(dirty)
		}
		for _, d := range []string{work.Dir, onTmpfs.Dir} {
			if _, err := os.Stat(d); err != nil {
				copyDir(t, pristine, d)
			}
		}
		dirty = ""
	}
	ageArgs := []string{}
	for _, r := range to {
		ageArgs = append(ageArgs, "-r", r)
	}
	rows := Measure(t, setup, []Contender{
		{Name: "fleet secrets rekey (in process, parallel)", Run: func() error {
			dirty = work.Dir
			res, err := secrets.Rekey(context.Background(), work, ids, secrets.RekeyOptions{})
			if err == nil && len(res.Rekeyed) != n {
				err = fmt.Errorf("%d rekeyed, want %d", len(res.Rekeyed), n)
			}
			return err
		}},
		{Name: "agenix's way: age -d, age -r per file", Run: func() error {
			dirty = work.Dir
			for _, e := range work.Entries {
				p := filepath.Join(work.Dir, e.File)
				pt, err := exec.Command("age", "-d", "-i", keys[0].Path, p).Output()
				if err != nil {
					return fmt.Errorf("age -d %s: %w", e.File, err)
				}
				c := exec.Command("age", append(ageArgs, "-o", p+".tmp")...)
				c.Stdin = bytes.NewReader(pt)
				if out, err := c.CombinedOutput(); err != nil {
					return fmt.Errorf("age -r %s: %w: %s", e.File, err, out)
				}
				if err := os.Rename(p+".tmp", p); err != nil {
					return err
				}
			}
			return nil
		}},
		{Name: "fleet secrets rekey, files on tmpfs (fsync is free)", Run: func() error {
			dirty = onTmpfs.Dir
			res, err := secrets.Rekey(context.Background(), onTmpfs, ids, secrets.RekeyOptions{})
			if err == nil && len(res.Rekeyed) != n {
				err = fmt.Errorf("%d rekeyed, want %d", len(res.Rekeyed), n)
			}
			return err
		}},
		{Name: "fleet secrets rekey, nothing changed (default)", Run: func() error {
			res, err := secrets.Rekey(context.Background(), done, ids, secrets.RekeyOptions{})
			if err == nil && len(res.Unchanged) != n {
				err = fmt.Errorf("%d unchanged, want %d", len(res.Unchanged), n)
			}
			return err
		}},
	})
	setup()
	Record(t, Table("Rekeying 1,000 secrets from 1 to 5 recipients", rows, 0)+
		"\nfleet writes each file atomically and durably (temp file, fsync, rename, fsync of the directory);\nthe age loop writes a temp file and renames it, without fsync. The tmpfs row is fleet's rekey where\nfsync costs nothing: what remains is the cryptography, mostly an X25519 exchange per recipient.\n")
}

// need skips t unless every program is installed.
func need(t *testing.T, programs ...string) {
	t.Helper()
	testenv.Programs(t, programs...)
}

// ageKeygen makes an age X25519 identity file; it returns the file and
// the recipient.
func ageKeygen(t *testing.T) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "age.key")
	if out, err := exec.Command("age-keygen", "-o", p).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v: %s", err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			return p, r
		}
	}
	t.Fatal("no public key in age-keygen's output")
	return "", ""
}

// copyDir copies the regular files of src into dst (made if missing).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
