package bench

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// The set the rekey benchmark rewrites: 300 secrets of 2.7 KB, encrypted
// to 4 ssh-ed25519 keys, whose rule adds a fifth.
const (
	rekeyFiles = 300
	rekeySize  = 2700
)

// agenixSHA256 pins the agenix script measured (ryantm/agenix
// pkgs/agenix.sh at b027ee29d959fda4b60b57566d64c98a202e0feb, agenix 0.15.0):
// FLEET_BENCH_AGENIX names a copy of it. It is run from a temp dir, never
// kept in this repository.
const agenixSHA256 = "07563887d1b375e9f84becf9059e89f8e6b5b80e9035909e8b9a828fe211078e"

// TestRekey: 300 secrets rekeyed from 4 to 5 ssh-ed25519 recipients, side
// by side: fleet's CLI (parallel, one flush for the whole set); a loop of
// the age CLI (one `age -d` and one `age -r` process per file: what agenix
// does, without Nix); real `agenix -r`, which also runs nix-instantiate
// twice per file; and the physical limit, the X25519 operations alone
// that rekeying these files takes, on all cores. Every run starts from the
// same old set and is checked: each file opens with the new key only.
func TestRekey(t *testing.T) {
	Require(t)
	need(t, "age", "age-keygen")
	var keys []sshtest.Key
	for i := 0; i < 5; i++ {
		keys = append(keys, sshtest.NewKey(t, "ed25519", "", fmt.Sprint("k", i)))
	}
	var from, to []string
	for i, k := range keys {
		to = append(to, k.Line)
		if i < 4 {
			from = append(from, k.Line)
		}
	}
	// Files must open with k4: a recipient of the new set, none of the old.
	check, err := secrets.LoadIdentities([]string{keys[4].Path}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The old set, made once and copied before each run, with its rules.
	base := benchDir(t)
	pristine := filepath.Join(base, "pristine")
	if err := os.Mkdir(pristine, 0o700); err != nil {
		t.Fatal(err)
	}
	plain := map[string][]byte{}
	var rules strings.Builder
	rules.WriteString("let\n  keys = [\n")
	for _, k := range to {
		fmt.Fprintf(&rules, "    %q\n", k)
	}
	rules.WriteString("  ];\nin\n{\n")
	for i := 0; i < rekeyFiles; i++ {
		name := fmt.Sprintf("s%04d.age", i)
		pt := bytes.Repeat([]byte(fmt.Sprintf("PLAINTEXT-%04d ", i)), rekeySize/15+1)[:rekeySize]
		ct, err := secrets.Encrypt(pt, from, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pristine, name), ct, 0o600); err != nil {
			t.Fatal(err)
		}
		plain[name] = pt
		fmt.Fprintf(&rules, "  %q.publicKeys = keys;\n", name)
	}
	rules.WriteString("}\n")
	if err := os.WriteFile(filepath.Join(pristine, "secrets.nix"), []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	fleet := filepath.Join(t.TempDir(), "fleet")
	if out, err := exec.Command("go", "build", "-o", fleet, "github.com/fleetnix/fleet/cmd/fleet").CombinedOutput(); err != nil {
		t.Fatalf("go build fleet: %v\n%s", err, out)
	}
	work := filepath.Join(base, "work")
	shm, err := os.MkdirTemp("/dev/shm", "fleet-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	onTmpfs := filepath.Join(shm, "work")
	done := filepath.Join(base, "done")
	copyDir(t, pristine, done)

	verify := func(dir string) {
		t.Helper()
		for name, pt := range plain {
			got, err := secrets.DecryptFile(filepath.Join(dir, name), check)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s after rekey: %.20q, %v", name, got, err)
			}
		}
	}
	dirty := ""
	setup := func() {
		if dirty != "" {
			verify(dirty)
			os.RemoveAll(dirty)
		}
		for _, d := range []string{work, onTmpfs} {
			if _, err := os.Stat(d); err != nil {
				copyDir(t, pristine, d)
			}
		}
		// A repository at rest: what set-up wrote is on disk before a
		// run, so no contender's flush pays for it.
		syscall.Sync()
		dirty = ""
	}
	fleetCLI := func(dir string, want string) error {
		c := exec.Command(fleet, "secrets", "rekey", "-i", keys[0].Path)
		c.Dir = dir
		c.Env = append(os.Environ(), "RULES=")
		out, err := c.CombinedOutput()
		if err == nil && !strings.Contains(string(out), want) {
			err = fmt.Errorf("fleet said %q, want %q", out, want)
		}
		return err
	}
	if err := fleetCLI(done, fmt.Sprintf("rekeyed %d, unchanged 0", rekeyFiles)); err != nil {
		t.Fatal(err)
	}
	verify(done)

	ageArgs := []string{}
	for _, r := range to {
		ageArgs = append(ageArgs, "-r", r)
	}
	contenders := []Contender{
		{Name: "fleet secrets rekey (the CLI: parallel, one flush for the set)", Run: func() error {
			dirty = work
			return fleetCLI(work, fmt.Sprintf("rekeyed %d, unchanged 0", rekeyFiles))
		}},
		{Name: "a loop of the age CLI: age -d, age -r per file", Run: func() error {
			dirty = work
			for i := 0; i < rekeyFiles; i++ {
				p := filepath.Join(work, fmt.Sprintf("s%04d.age", i))
				pt, err := exec.Command("age", "-d", "-i", keys[0].Path, p).Output()
				if err != nil {
					return fmt.Errorf("age -d %s: %w", p, err)
				}
				c := exec.Command("age", append(ageArgs, "-o", p+".tmp")...)
				c.Stdin = bytes.NewReader(pt)
				if out, err := c.CombinedOutput(); err != nil {
					return fmt.Errorf("age -r %s: %w: %s", p, err, out)
				}
				if err := os.Rename(p+".tmp", p); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	agenix, why := agenixScript(t)
	if agenix != "" {
		env := nixEnv(t)
		contenders = append(contenders, Contender{Name: "agenix -r (0.15.0: nix-instantiate twice, age twice per file)", Run: func() error {
			dirty = work
			c := exec.Command("bash", agenix, "-r", "-i", keys[0].Path)
			c.Dir, c.Env = work, append(env, "RULES=./secrets.nix")
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("agenix -r: %v: %.2000s", err, out)
			}
			return nil
		}})
	}
	contenders = append(contenders,
		Contender{Name: "fleet secrets rekey (the CLI), files on tmpfs (flushing is free)", Run: func() error {
			dirty = onTmpfs
			return fleetCLI(onTmpfs, fmt.Sprintf("rekeyed %d, unchanged 0", rekeyFiles))
		}},
		Contender{Name: "fleet secrets rekey, nothing changed (the CLI, default)", Run: func() error {
			return fleetCLI(done, fmt.Sprintf("rekeyed 0, unchanged %d", rekeyFiles))
		}},
		Contender{Name: fmt.Sprintf("limit: the scalar multiplications alone (%d ladders and %d fixed-base per file, %d cores)", laddersPerFile, fixedBasePerFile, runtime.GOMAXPROCS(0)), Run: func() error {
			return scalarMults(rekeyFiles)
		}},
	)
	loadBefore := loadAverage()
	rows := Measure(t, setup, contenders)
	setup()

	f, ageLoop, limit := rows[0].Median, rows[1].Median, rows[len(rows)-1].Median
	var b strings.Builder
	b.WriteString(Table(fmt.Sprintf("Rekeying %d secrets of %.1f KB from 4 to 5 ssh-ed25519 recipients", rekeyFiles, float64(rekeySize)/1000), rows, 0))
	x := func(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
	tmpfs := rows[len(rows)-3].Median
	fmt.Fprintf(&b, "\n| ratio | fleet | the physical limit (the scalar multiplications alone, %s) |\n|---|---|---|\n", limit.Round(time.Millisecond))
	fmt.Fprintf(&b, "| the age loop's time over | %.1fx | %.1fx |\n", x(ageLoop, f), x(ageLoop, limit))
	if agenix != "" {
		fmt.Fprintf(&b, "| agenix -r's time over | %.0fx | %.0fx |\n", x(rows[2].Median, f), x(rows[2].Median, limit))
	}
	fmt.Fprintf(&b, "\nfleet takes %.1fx the limit on disk and %.1fx on tmpfs.\n", x(f, limit), x(tmpfs, limit))
	fmt.Fprintf(&b, "Each file costs %d X25519 ladders and %d fixed-base multiplications: 2 ladders to unwrap its file key for one\n"+
		"ssh-ed25519 identity; for each of 5 ssh-ed25519 recipients, the ephemeral key (fixed-base, from a precomputed table)\n"+
		"and the exchange with the key times its tweak (a ladder; the tweaked key is worked out once per key). fleet's time includes\n"+
		"its process start and the rules' evaluation; it writes every file to a temp file, flushes the filesystem once (syncfs),\n"+
		"renames, and syncs the directory, so a crash leaves each file old or new. The age loop and agenix rename without any flush.\n"+
		"Each run starts with the filesystem clean (set-up is synced first), as a repository at rest is.\n", laddersPerFile, fixedBasePerFile)
	fmt.Fprintf(&b, "The load average (1, 5, 15 min) was %s before and %s after.\n", loadBefore, loadAverage())
	if agenix == "" {
		fmt.Fprintf(&b, "agenix -r was not measured: %s.\n", why)
	} else {
		fmt.Fprintf(&b, "agenix is ryantm/agenix's pkgs/agenix.sh (sha256 %s...) run as is with this machine's age, jq and nix-instantiate.\n", agenixSHA256[:16])
	}
	Record(t, b.String())
}

// What rekeying one file of the benchmark takes: unwrap for one
// ssh-ed25519 identity (2 ladders: the exchange, the tweak), and wrap for
// 5 ssh-ed25519 recipients, each the ephemeral key (a fixed-base
// multiplication, from a precomputed table) and the exchange with the
// recipient's key times its tweak (a ladder; the tweaked key is worked
// out once per key).
const (
	laddersPerFile   = 2 + 5
	fixedBasePerFile = 5
)

// scalarMults performs the scalar multiplications of files files, on all
// cores: laddersPerFile X25519 ladders (crypto/ecdh) and fixedBasePerFile
// fixed-base multiplications (filippo.io/edwards25519) each.
func scalarMults(files int) error {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		count := files / workers
		if w < files%workers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				errs <- err
				return
			}
			point := k.PublicKey()
			s := edwards25519.NewScalar()
			if _, err := s.SetBytesWithClamping(k.Bytes()); err != nil {
				errs <- err
				return
			}
			var p edwards25519.Point
			for i := 0; i < count; i++ {
				for j := 0; j < laddersPerFile; j++ {
					out, err := k.ECDH(point)
					if err == nil {
						point, err = ecdh.X25519().NewPublicKey(out)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				for j := 0; j < fixedBasePerFile; j++ {
					p.ScalarBaseMult(s).BytesMontgomery()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// agenixScript prepares the agenix script named by FLEET_BENCH_AGENIX for
// this machine in a temp dir (its Nix build substitutes the paths of age,
// jq, nix-instantiate, mktemp and diff; here they are on PATH), after
// checking it is the pinned one. It returns "" and why when it cannot.
func agenixScript(t *testing.T) (string, string) {
	src := os.Getenv("FLEET_BENCH_AGENIX")
	if src == "" {
		return "", "FLEET_BENCH_AGENIX does not name a copy of ryantm/agenix's pkgs/agenix.sh (scripts/bench fetches one)"
	}
	for _, p := range []string{"nix-instantiate", "jq", "mktemp", "diff", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			testenv.Missing(t, "agenix needs %s", p)
		}
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("FLEET_BENCH_AGENIX: %v", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != agenixSHA256 {
		t.Fatalf("FLEET_BENCH_AGENIX=%s has sha256 %x, want the pinned %s", src, sum, agenixSHA256)
	}
	s := string(b)
	for k, v := range map[string]string{"@ageBin@": "age", "@jqBin@": "jq", "@nixInstantiate@": "nix-instantiate", "@mktempBin@": "mktemp", "@diffBin@": "diff", "@version@": "0.15.0"} {
		s = strings.ReplaceAll(s, k, v)
	}
	p := filepath.Join(t.TempDir(), "agenix")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p, ""
}

// loadAverage is the machine's load average, as /proc/loadavg says it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], ", ")
	}
	return "unknown"
}

// benchDir is a directory for secrets where a repository would be, in the
// user's cache directory: on this machine files are created in /tmp ~6
// times slower than elsewhere on the same disk (a heavily churned tree),
// which no contender should be measured by. It is removed when t ends.
func benchDir(t *testing.T) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := os.MkdirTemp(cache, "fleet-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// nixEnv runs nix-bin 2.8 as root without a daemon: a private state
// directory and no build users.
func nixEnv(t *testing.T) []string {
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"NIX_STATE_DIR="+filepath.Join(home, "state"), "NIX_CONF_DIR="+home, "NIX_REMOTE=", "NIX_CONFIG=build-users-group =")
}

// need skips t unless every program is installed.
func need(t *testing.T, programs ...string) {
	t.Helper()
	testenv.Programs(t, programs...)
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
