package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/testenv"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/agetest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestSecretsScripts runs testdata/secrets/*.txt: ls, edit, decrypt, rekey
// against the real age CLI. Each script starts with ssh keys k1, k2 (and
// k1.pub, k2.pub), an age identity ak (recipient in $AGEREC) and a
// secrets.nix naming them (see secretsSetup).
func TestSecretsScripts(t *testing.T) { runSecretsScripts(t, "secrets") }

// TestKeysScripts runs testdata/keys/*.txt.
func TestKeysScripts(t *testing.T) { runSecretsScripts(t, "keys") }

// TestKeysRemoteScripts runs testdata/keys/remote/*.txt (keys copy, keys
// check --target) against a real sshd; $PORT and $SSHUSER reach it with the
// system ssh client for checks on the remote side.
func TestKeysRemoteScripts(t *testing.T) {
	sshtest.RequireRoot(t)
	k := sshtest.NewKey(t, "ed25519", "", "operator")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	runSecretsScripts(t, "keys/remote", map[string]string{
		"TARGET": s.Target(), "KEY": k.Path, "KNOWN": s.WriteKnownHosts(t),
		"PORT": strconv.Itoa(s.Port), "SSHUSER": s.User, "SSH_AUTH_SOCK": "",
	})
}

func runSecretsScripts(t *testing.T, dir string, env ...map[string]string) {
	testenv.Programs(t, "age", "age-keygen", "ssh-keygen")
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", dir),
		Setup: func(e *testscript.Env) error {
			for _, m := range env {
				for k, v := range m {
					e.Setenv(k, v)
				}
			}
			return secretsSetup(e)
		},
		// [workondisk]: the scripts' work directories are not in memory
		// (not tmpfs), as /tmp usually is not.
		Condition: func(cond string) (bool, error) {
			if cond != "workondisk" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			var st syscall.Statfs_t
			if err := syscall.Statfs(os.TempDir(), &st); err != nil {
				return false, err
			}
			return st.Type != 0x01021994 && st.Type != 0x858458f6, nil // tmpfs, ramfs
		},
		Cmds: withScriptCmds(map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// signal NAME PIDFILE: send SIGNAME (HUP, QUIT, TERM, INT,
			// KILL) to the process whose pid PIDFILE holds.
			"signal": func(ts *testscript.TestScript, neg bool, args []string) {
				sig := map[string]syscall.Signal{"HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL}[args[0]]
				pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[1])))
				ts.Check(err)
				if sig == 0 || pid <= 1 {
					ts.Fatalf("usage: signal HUP|QUIT|TERM|INT|KILL PIDFILE")
				}
				ts.Check(syscall.Kill(pid, sig))
			},
			// gone PIDFILE: the process whose pid PIDFILE holds exits
			// within 10s.
			"gone": func(ts *testscript.TestScript, neg bool, args []string) {
				pid, err := strconv.Atoi(strings.TrimSpace(ts.ReadFile(args[0])))
				ts.Check(err)
				for i := 0; i < 200; i++ {
					if syscall.Kill(pid, 0) != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				ts.Fatalf("process %d is still running", pid)
			},
			// mode FILE 0600: the file's permission bits are exactly these.
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				st, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				want, _ := strconv.ParseUint(args[1], 8, 32)
				if (st.Mode().Perm() == os.FileMode(want)) == neg {
					ts.Fatalf("%s has mode %#o, want %s", args[0], st.Mode().Perm(), args[1])
				}
			},
			// waitfile FILE: wait up to 10s for FILE to exist.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				for i := 0; i < 200; i++ {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				ts.Fatalf("%s did not appear", args[0])
			},
			// rage [-a] -R PUBFILE|-r RECIPIENT... -o OUT IN: encrypt IN as
			// rage writes files (a grease stanza last; see test/agetest).
			"rage": func(ts *testscript.TestScript, neg bool, args []string) {
				var recips []age.Recipient
				var out, in string
				armored := false
				for i := 0; i < len(args); i++ {
					switch args[i] {
					case "-a":
						armored = true
					case "-R", "-r":
						line := args[i+1]
						if args[i] == "-R" {
							line = strings.TrimSpace(ts.ReadFile(args[i+1]))
						}
						rs, err := secrets.ParseRecipients([]string{line})
						ts.Check(err)
						recips = append(recips, rs...)
						i++
					case "-o":
						out = args[i+1]
						i++
					default:
						in = args[i]
					}
				}
				ct, err := agetest.RageEncrypt([]byte(ts.ReadFile(in)), recips, armored, agetest.Grease())
				ts.Check(err)
				ts.Check(os.WriteFile(ts.MkAbs(out), ct, 0o600))
			},
			// emptydir DIR: DIR exists and holds nothing.
			"emptydir": func(ts *testscript.TestScript, neg bool, args []string) {
				es, err := os.ReadDir(ts.MkAbs(args[0]))
				ts.Check(err)
				if len(es) != 0 {
					ts.Fatalf("%s holds %v", args[0], es)
				}
			},
		}),
	})
}

func secretsSetup(e *testscript.Env) error {
	w := e.WorkDir
	for _, k := range []string{"k1", "k2"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", k, "-f", filepath.Join(w, k)).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("age-keygen", "-o", filepath.Join(w, "ak")).CombinedOutput(); err != nil {
		return fmt.Errorf("age-keygen: %v: %s", err, out)
	}
	ak, _ := os.ReadFile(filepath.Join(w, "ak"))
	var agerec string
	for _, l := range strings.Split(string(ak), "\n") {
		if s, ok := strings.CutPrefix(l, "# public key: "); ok {
			agerec = s
		}
	}
	k1, _ := os.ReadFile(filepath.Join(w, "k1.pub"))
	k2, _ := os.ReadFile(filepath.Join(w, "k2.pub"))
	rules := fmt.Sprintf(`let
  k1 = %q;
  k2 = %q;
  ak = %q;
in {
  "a.age".publicKeys = [ k1 ];
  "b.age" = { publicKeys = [ k1 k2 ]; armor = true; };
  "sub/c.age".publicKeys = [ k1 ak ];
}
`, strings.TrimSpace(string(k1)), strings.TrimSpace(string(k2)), agerec)
	if err := os.WriteFile(filepath.Join(w, "secrets.nix"), []byte(rules), 0o644); err != nil {
		return err
	}
	// Plaintext goes to tmpfs only: each script gets its own directory
	// in /dev/shm as $XDG_RUNTIME_DIR (and $RUNDIR).
	run, err := os.MkdirTemp("/dev/shm", "fleet-test-run-")
	if err != nil {
		return err
	}
	e.Defer(func() { os.RemoveAll(run) })
	e.Setenv("XDG_RUNTIME_DIR", run)
	e.Setenv("RUNDIR", run)
	e.Setenv("AGEREC", agerec)
	e.Setenv("HOME", filepath.Join(w, "home"))
	e.Setenv("RULES", "")
	return nil
}
