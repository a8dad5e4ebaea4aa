package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/testenv"

	"github.com/hashicorp/go-multierror"

	"github.com/fleetnix/fleet/test/sshtest"
)

func needAge(t testing.TB) {
	t.Helper()
	testenv.Programs(t, "age")
}

func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	c := exec.Command(name, args...)
	c.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, stderr.String())
	}
	return out
}

// ageKey makes an age X25519 identity file with age-keygen; returns the
// file and the recipient.
func ageKey(t testing.TB) (string, string) {
	p := filepath.Join(t.TempDir(), "age.key")
	run(t, nil, "age-keygen", "-o", p)
	b, _ := os.ReadFile(p)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "# public key: ") {
			return p, strings.TrimPrefix(l, "# public key: ")
		}
	}
	t.Fatal("no public key in age-keygen output")
	return "", ""
}

func TestInteropWithAgeCLI(t *testing.T) {
	needAge(t)
	ed := sshtest.NewKey(t, "ed25519", "", "ed")
	rsa := sshtest.NewKey(t, "rsa", "", "rsa")
	agePath, ageRec := ageKey(t)
	cases := []struct {
		name      string
		idFile    string
		recipient string
	}{
		{"ssh-ed25519", ed.Path, ed.Line},
		{"ssh-rsa", rsa.Path, rsa.Line},
		{"X25519", agePath, ageRec},
	}
	for _, c := range cases {
		for _, armored := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/armor=%v", c.name, armored), func(t *testing.T) {
				secret := []byte("interop-" + c.name + "\x00\xffbinary")
				ids, err := LoadIdentities([]string{c.idFile}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ids.List[0].Recipient == "" || !strings.HasPrefix(c.recipient, strings.Join(strings.Fields(ids.List[0].Recipient)[:1], "")) {
					t.Fatalf("identity recipient %q, want the type of %q", ids.List[0].Recipient, c.recipient)
				}
				// fleet -> age
				ct, err := Encrypt(secret, []string{c.recipient}, armored)
				if err != nil {
					t.Fatal(err)
				}
				if IsArmored(ct) != armored {
					t.Fatalf("armored = %v, want %v", IsArmored(ct), armored)
				}
				f := filepath.Join(t.TempDir(), "x.age")
				os.WriteFile(f, ct, 0o600)
				if got := run(t, nil, "age", "-d", "-i", c.idFile, f); !bytes.Equal(got, secret) {
					t.Fatalf("age -d got %q", got)
				}
				// age -> fleet
				args := []string{"-r", c.recipient}
				if armored {
					args = append(args, "-a")
				}
				ct2 := run(t, secret, "age", args...)
				got, err := Decrypt(ct2, ids)
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("Decrypt(age output) = %q, %v", got, err)
				}
				// header of the age CLI's file
				h, err := ParseHeader(bytes.NewReader(ct2))
				if err != nil {
					t.Fatal(err)
				}
				w, _ := WantFor([]string{c.recipient})
				if !w.Matches(h) || h.Armored != armored {
					t.Fatalf("header %+v does not match %+v", h, w)
				}
			})
		}
	}
}

func TestTagsMatchAgeStanzas(t *testing.T) {
	needAge(t)
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "rsa", "", "b")
	c := sshtest.NewKey(t, "ed25519", "", "c")
	_, x := ageKey(t)
	ct := run(t, []byte("s"), "age", "-r", a.Line, "-r", b.Line, "-r", x, "-r", x)
	h, err := ParseHeader(bytes.NewReader(ct))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ssh-ed25519 " + SSHTag(a.Public), "ssh-rsa " + SSHTag(b.Public)}
	if got := h.Tags(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("tags %v, want %v", got, want)
	}
	if n := h.Count("X25519"); n != 2 {
		t.Fatalf("X25519 count %d, want 2", n)
	}
	for _, tc := range []struct {
		keys []string
		ok   bool
	}{
		{[]string{a.Line, b.Line, x, x}, true},
		{[]string{b.Line, x, a.Line, x}, true},
		{[]string{a.Line, b.Line, x}, false},
		{[]string{a.Line, c.Line, x, x}, false},
		{[]string{a.Line, b.Line, c.Line, x, x}, false},
	} {
		w, err := WantFor(tc.keys)
		if err != nil {
			t.Fatal(err)
		}
		if w.Matches(h) != tc.ok {
			t.Errorf("Matches(%d keys) = %v, want %v", len(tc.keys), !tc.ok, tc.ok)
		}
	}
	if _, err := ParseHeader(strings.NewReader("not age\n")); !errors.Is(err, ErrNotAge) {
		t.Fatalf("ParseHeader(garbage) = %v, want ErrNotAge", err)
	}
}

func TestPassphraseKeyAskedOnceOnlyWhenNeeded(t *testing.T) {
	enc := sshtest.NewKey(t, "ed25519", "s3cret-pass", "enc")
	other := sshtest.NewKey(t, "ed25519", "", "other")
	asked := 0
	ids, err := LoadIdentities([]string{enc.Path, other.Path}, func(string) ([]byte, error) {
		asked++
		return []byte("s3cret-pass"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// a file only for the other key must not ask
	ct, _ := Encrypt([]byte("x"), []string{other.Line}, false)
	if _, err := Decrypt(ct, ids); err != nil || asked != 0 {
		t.Fatalf("decrypt for other key: err %v, asked %d times", err, asked)
	}
	for i := 0; i < 5; i++ {
		ct, _ := Encrypt([]byte("y"), []string{enc.Line}, false)
		if got, err := Decrypt(ct, ids); err != nil || string(got) != "y" {
			t.Fatalf("decrypt %d: %q %v", i, got, err)
		}
	}
	if asked != 1 {
		t.Fatalf("passphrase asked %d times, want 1", asked)
	}
	// no terminal: a clear error naming the key
	ids, _ = LoadIdentities([]string{enc.Path}, nil)
	ct, _ = Encrypt([]byte("z"), []string{enc.Line}, false)
	_, err = Decrypt(ct, ids)
	if err == nil || !strings.Contains(err.Error(), enc.Path+" is passphrase-protected") || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("err = %v", err)
	}
}

func TestWrongIdentityError(t *testing.T) {
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	ids, _ := LoadIdentities([]string{b.Path}, nil)
	ct, _ := Encrypt([]byte("x"), []string{a.Line}, false)
	_, err := Decrypt(ct, ids)
	if !errors.Is(err, ErrCannotDecrypt) {
		t.Fatalf("err = %v, want ErrCannotDecrypt", err)
	}
}

// makeSet writes n secrets encrypted to from into dir and returns rules
// that want them encrypted to to.
func makeSet(t testing.TB, dir string, n int, from, to []string) (*Rules, map[string][]byte) {
	r := &Rules{Dir: dir}
	plain := map[string][]byte{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("s%04d.age", i)
		pt := []byte(fmt.Sprintf("PLAINTEXT-%04d-do-not-leak", i))
		ct, err := Encrypt(pt, from, i%7 == 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), ct, 0o600); err != nil {
			t.Fatal(err)
		}
		plain[name] = pt
		r.Entries = append(r.Entries, Rule{File: name, PublicKeys: to, Armor: i%7 == 0})
	}
	return r, plain
}

func TestRekeyOnlyChangedAndPartialFailure(t *testing.T) {
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	c := sshtest.NewKey(t, "ed25519", "", "c")
	dir := t.TempDir()
	r, plain := makeSet(t, dir, 10, []string{a.Line}, []string{a.Line, b.Line})
	// one file a cannot decrypt: rekey of it fails, the others go on
	bad, _ := Encrypt([]byte("c-only"), []string{c.Line}, false)
	os.WriteFile(filepath.Join(dir, "bad.age"), bad, 0o600)
	r.Entries = append(r.Entries, Rule{File: "bad.age", PublicKeys: []string{a.Line, b.Line}}, Rule{File: "gone.age", PublicKeys: []string{a.Line}})
	ids, _ := LoadIdentities([]string{a.Path}, nil)
	res, err := Rekey(context.Background(), r, ids, RekeyOptions{Parallel: 3})
	var me *multierror.Error
	if !errors.As(err, &me) || len(me.Errors) != 1 || !errors.Is(me.Errors[0], ErrCannotDecrypt) || !strings.HasPrefix(me.Errors[0].Error(), "bad.age: ") {
		t.Fatalf("err = %v, want one ErrCannotDecrypt for bad.age", err)
	}
	if len(res.Rekeyed) != 10 || len(res.Missing) != 1 {
		t.Fatalf("res = %+v", res)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "bad.age")); !bytes.Equal(got, bad) {
		t.Fatal("bad.age was modified")
	}
	idsB, _ := LoadIdentities([]string{b.Path}, nil)
	for name, pt := range plain {
		got, err := DecryptFile(filepath.Join(dir, name), idsB)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s with b: %q %v", name, got, err)
		}
		if st, _ := os.Stat(filepath.Join(dir, name)); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", name, st.Mode())
		}
	}
	// second run: nothing changed, nothing rewritten
	r.Entries = r.Entries[:10]
	st0, _ := os.Stat(filepath.Join(dir, "s0001.age"))
	res, err = Rekey(context.Background(), r, ids, RekeyOptions{})
	st1, _ := os.Stat(filepath.Join(dir, "s0001.age"))
	if err != nil || len(res.Rekeyed) != 0 || len(res.Unchanged) != 10 || !os.SameFile(st0, st1) {
		t.Fatalf("second rekey: %+v %v (same inode %v)", res, err, os.SameFile(st0, st1))
	}
	res, err = Rekey(context.Background(), r, ids, RekeyOptions{All: true, Files: []string{"s0002.age", "nope.age"}})
	if len(res.Rekeyed) != 1 || !errors.Is(err, ErrNoRule) {
		t.Fatalf("--all one file: %+v %v", res, err)
	}
}

const crashEnv = "FLEET_SECRETS_CRASH_CHILD"

// TestRekeyCrashChild is the child process of TestRekeyCrashSafety.
func TestRekeyCrashChild(t *testing.T) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		t.Skip("child process of TestRekeyCrashSafety")
	}
	parts := strings.Split(spec, "|")
	dir, keyPath, pubs := parts[0], parts[1], strings.Split(parts[2], ",")
	r := &Rules{Dir: dir}
	subdirs := append([]string{""}, parts[3:]...) // more directories of dir to rekey
	for _, sub := range subdirs {
		names, _ := filepath.Glob(filepath.Join(dir, sub, "*.age"))
		for i, n := range names {
			r.Entries = append(r.Entries, Rule{File: filepath.ToSlash(filepath.Join(sub, filepath.Base(n))), PublicKeys: pubs, Armor: i%2 == 0})
		}
	}
	ids, err := LoadIdentities([]string{keyPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rekey(context.Background(), r, ids, RekeyOptions{All: true, Parallel: 4}); err != nil {
		t.Fatal(err)
	}
}

func TestRekeyCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 30 rekey processes")
	}
	a := sshtest.NewKey(t, "ed25519", "", "a")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	dir := t.TempDir()
	_, plain := makeSet(t, dir, 200, []string{a.Line}, nil)
	recips := [][]string{{a.Line}, {a.Line, b.Line}}
	before := map[string][]byte{}
	for name := range plain {
		before[name], _ = os.ReadFile(filepath.Join(dir, name))
	}
	child := func(dir string, recips []string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRekeyCrashChild$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir+"|"+a.Path+"|"+strings.Join(recips, ","))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	// How long a whole rekey takes here, on a copy: the kills land
	// anywhere in it (writing temp files, flushing, renaming) however
	// fast the machine is.
	probe := t.TempDir()
	makeSet(t, probe, 200, []string{a.Line}, nil)
	start := time.Now()
	cmd, out := child(probe, recips[1])
	if err := cmd.Wait(); err != nil {
		t.Fatalf("a rekey that is not killed: %v\n%s", err, out)
	}
	whole := time.Since(start)
	t.Logf("a whole rekey of 200 files takes %v here", whole.Round(time.Millisecond))
	kills := 0
	for i := 0; i < 30; i++ {
		cmd, out := child(dir, recips[i%2])
		time.Sleep(time.Duration(float64(whole) * (0.1 + rand.Float64())))
		if cmd.Process.Signal(syscall.SIGKILL) == nil {
			kills++
		}
		cmd.Wait()
		if bytes.Contains(out.Bytes(), []byte("do-not-leak")) {
			t.Fatalf("child output contains plaintext: %s", out.Bytes())
		}
	}
	t.Logf("killed %d of 30 rekeys", kills)
	ids, _ := LoadIdentities([]string{a.Path}, nil)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.Contains(b, []byte("do-not-leak")) {
			t.Fatalf("%s holds plaintext", e.Name())
		}
		if strings.HasPrefix(e.Name(), TempPrefix) {
			continue // ciphertext leftovers of a killed write
		}
		pt, err := Decrypt(b, ids)
		if err != nil || !bytes.Equal(pt, plain[e.Name()]) {
			t.Fatalf("%s after crashes: %q %v", e.Name(), pt, err)
		}
	}
	changed := 0
	for name := range plain {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(b, before[name]) {
			changed++
		}
	}
	t.Logf("%d of 200 files rewritten", changed)
	if changed == 0 {
		t.Fatal("no rekey got as far as writing a file: the kills tested nothing")
	}

	// Each rekey swept what the killed one before it left; what the last
	// kill left goes with the next rekey, and is named.
	var left []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			left = append(left, e.Name())
		}
	}
	r := &Rules{Dir: dir}
	for name := range plain {
		r.Entries = append(r.Entries, Rule{File: name, PublicKeys: []string{a.Line}})
	}
	res, err := Rekey(context.Background(), r, ids, RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the last kill left %d temp file(s)", len(left))
	if !slices.Equal(res.Swept, left) {
		t.Fatalf("swept %v, want %v", res.Swept, left)
	}
	if ms, _ := filepath.Glob(filepath.Join(dir, TempPrefix+"*")); len(ms) != 0 {
		t.Fatalf("temp files left after a rekey: %v", ms)
	}
}

// TestLockOneWriter: a second Lock of the same directory fails at once
// with ErrLocked (flock is per open file, so this holds within one process
// as between two); after unlock it is free.
func TestLockOneWriter(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "secrets in "+dir+" are locked by another fleet process") {
		t.Fatalf("second lock: %v", err)
	}
	r := &Rules{Dir: dir}
	if _, err := Rekey(context.Background(), r, nil, RekeyOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("rekey under the lock: %v", err)
	}
	unlock()
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
	if _, err := Lock(filepath.Join(dir, "nope")); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if err := WriteFileAtomic(filepath.Join(dir, "nodir", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("leftovers: %v", es)
	}
}

func TestRekeyParallelAsksPassphraseOnce(t *testing.T) {
	enc := sshtest.NewKey(t, "ed25519", "pass-words", "enc")
	b := sshtest.NewKey(t, "ed25519", "", "b")
	dir := t.TempDir()
	r, plain := makeSet(t, dir, 20, []string{enc.Line}, []string{enc.Line, b.Line})
	var mu sync.Mutex
	asked := 0
	ids, err := LoadIdentities([]string{enc.Path}, func(string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return []byte("pass-words"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Rekey(context.Background(), r, ids, RekeyOptions{Parallel: 4})
	if err != nil || len(res.Rekeyed) != 20 {
		t.Fatalf("rekey: %+v %v", res, err)
	}
	if asked != 1 {
		t.Fatalf("asked %d times, want 1", asked)
	}
	idsB, _ := LoadIdentities([]string{b.Path}, nil)
	for name, pt := range plain {
		if got, err := DecryptFile(filepath.Join(dir, name), idsB); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
