package provision

// The fault suite: the install pipeline against a real sshd standing in for
// the installer, with the connection cut, the run interrupted (context
// cancel, which is what SIGINT does in the CLI) or the new root full, at
// known points. Every case must end in a PhaseError naming the phase, say
// "no changes made" only when nothing was changed, and leave a state from
// which --resume (or a plain re-run) completes with the staged bytes
// identical to the source.
//
// Phase boundaries come from Options.OnPhase: the pipeline calls it with
// "started" just before a phase runs and "finished" just before recording
// the phase done, synchronously, so a hook there acts at exactly those
// points. Cuts in the middle of a transfer stop the process
// writing on the installer (SIGSTOP) once part of its file is on disk, so
// the cut lands inside the file and the test can say so.
//
// Assumptions are those of pipeline_test.go: root, OpenSSH, git and nix.
// Each case forks one shared fixture (locking the flake with nix is the
// slow part): its own copy of the flake, its own new root and its own sshd,
// so its own /run and install record.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// faultPhases are the phases the fault cases run: every phase that works
// on the installer without real disks, a nixos-install or a reboot.
var faultPhases = []string{PhasePreflight, PhaseStage, PhaseIdentity, PhaseScan}

// TestFaultConnectionKilledAtPhaseBoundary cuts the SSH connection as each
// phase starts (and once after stage finished but before it was recorded).
// The run fails naming that phase with a connection error; a run that
// claims "no changes made" left the new root empty; and --resume completes,
// skipping exactly the phases recorded done, with every byte in place.
func TestFaultConnectionKilledAtPhaseBoundary(t *testing.T) {
	base := newPipelineFixture(t)
	for _, c := range []struct {
		name    string
		cutAt   PhaseEvent // the phase and state at which the connection is cut
		changed bool       // the PhaseError's Changed
		resume  bool       // complete with --resume (else a plain re-run)
		after   string     // the completing run's phases
	}{{
		name:    "preflight starts",
		cutAt:   PhaseEvent{Phase: PhasePreflight, State: PhaseStarted},
		changed: false,
		resume:  false,
		after:   "preflight:done stage:done identity:done scan:done",
	}, {
		// Stage counts as a change from its first step: conservative.
		name:    "stage starts",
		cutAt:   PhaseEvent{Phase: PhaseStage, State: PhaseStarted},
		changed: true,
		resume:  true,
		after:   "preflight:done stage:done identity:done scan:done",
	}, {
		// The stage's work is done but not recorded: the summary and the
		// error both say stage failed, and resume redoes it.
		name:    "stage finished, not yet recorded",
		cutAt:   PhaseEvent{Phase: PhaseStage, State: PhaseFinished},
		changed: true,
		resume:  true,
		after:   "preflight:done stage:done identity:done scan:done",
	}, {
		name:    "identity starts",
		cutAt:   PhaseEvent{Phase: PhaseIdentity, State: PhaseStarted},
		changed: true,
		resume:  true,
		after:   "preflight:done stage:resumed identity:done scan:done",
	}, {
		name:    "scan starts",
		cutAt:   PhaseEvent{Phase: PhaseScan, State: PhaseStarted},
		changed: true,
		resume:  true,
		after:   "preflight:done stage:resumed identity:resumed scan:done",
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := base.fork(t)
			o := f.options(t, faultPhases...)
			killed := 0
			o.OnPhase = onPhase(c.cutAt, func() { killed = f.srv.KillConnections() })
			sum, err := Install(context.Background(), o)
			if killed == 0 {
				t.Fatalf("no connection was cut (%s never %s?): %v", c.cutAt.Phase, c.cutAt.State, err)
			}
			pe := checkPhaseError(t, err, sum, c.cutAt.Phase, "failed", f.root)
			if !errors.Is(err, remote.ErrConnection) {
				t.Fatalf("not a connection error: %v", err)
			}
			if pe.Changed != c.changed {
				t.Fatalf("Changed = %v, want %v: %v", pe.Changed, c.changed, err)
			}

			f.complete(t, o, c.resume, c.after)
		})
	}
}

// complete runs the install again (with --resume when resume) and checks
// it ends with the phases after, every byte staged, and no upload temp
// file left in the new root.
func (f *pipelineFixture) complete(t *testing.T, o Options, resume bool, after string) {
	t.Helper()
	o.OnPhase, o.Resume = nil, resume
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("completing run (resume %v): %v", resume, err)
	}
	if got := statuses(sum); got != after {
		t.Fatalf("completing run's phases: %s, want %s", got, after)
	}
	f.checkStaged(t, f.root, o)
	if tmp := uploadTemps(f.root); len(tmp) > 0 {
		t.Errorf("upload temp files left in the new root: %v", tmp)
	}
}

// TestFaultConnectionKilledMidTransfer cuts the SSH connection while the
// installer is inside a file: the flake's tar stream (unpacked in place)
// and the identity's upload (a temp file renamed into place once its
// checksum matches). The half-written file is never taken for a whole one:
// the phase fails with a connection error, the identity's destination does
// not exist, and --resume redoes the phase and completes byte-exact,
// leaving no temp file behind.
func TestFaultConnectionKilledMidTransfer(t *testing.T) {
	base := newPipelineFixture(t)
	const size = 8 << 20
	for _, c := range []struct {
		name  string
		phase string
		setup func(t *testing.T, f *pipelineFixture, o *Options)
		// writer finds the installer's process writing the file, and glob
		// the file it writes (as this process sees it).
		writer func(f *pipelineFixture, o *Options) (func(proc) bool, string)
		after  string
	}{
		{
			name:  "stage, inside a file of the flake",
			phase: PhaseStage,
			setup: func(t *testing.T, f *pipelineFixture, o *Options) { f.addFile(t, "big.bin", size) },
			writer: func(f *pipelineFixture, o *Options) (func(proc) bool, string) {
				dest := f.root + "/etc/nixos"
				return func(p proc) bool { return p.argv[0] == "tar" && p.argv[len(p.argv)-1] == dest },
					filepath.Join(dest, "big.bin")
			},
			after: "preflight:done stage:done identity:done scan:done",
		},
		{
			name:  "identity, inside the key's upload",
			phase: PhaseIdentity,
			setup: func(t *testing.T, f *pipelineFixture, o *Options) {
				// An age identity padded with comment lines (valid: age
				// reads up to 16 MiB), big enough to catch its upload.
				// It needs an age.identityPaths entry of its own.
				o.Identity, o.IdentityDest = paddedAgeIdentity(t, size), "/var/lib/fleet/age.key"
				spec := *o.Spec
				spec.IdentityPaths = append([]string{o.IdentityDest}, spec.IdentityPaths...)
				o.Spec = &spec
			},
			writer: func(f *pipelineFixture, o *Options) (func(proc) bool, string) {
				dest := f.root + o.IdentityDest
				return func(p proc) bool {
						// dd takes stdin into the temp file (head -c where
						// dd is old); another dd, with if=, reads it back.
						reading := slices.ContainsFunc(p.argv, func(a string) bool { return strings.HasPrefix(a, "if=") })
						if p.argv[0] != "head" && (p.argv[0] != "dd" || reading) {
							return false
						}
						parent, ok := readProc(p.ppid)
						return ok && slices.Contains(parent.argv, "fleet-upload") && slices.Contains(parent.argv, dest)
					},
					filepath.Join(filepath.Dir(dest), ".fleet-upload.*")
			},
			after: "preflight:done stage:resumed identity:done scan:done",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := base.fork(t)
			o := f.options(t, faultPhases...)
			c.setup(t, f, &o)
			match, glob := c.writer(f, &o)
			type cut struct {
				written int64
				killed  int
				err     error
			}
			cuts, stop := make(chan cut, 1), make(chan struct{})
			go func() {
				pid, n, err := stopMidWrite(match, glob, size, stop)
				if err != nil {
					cuts <- cut{err: err}
					return
				}
				k := f.srv.KillConnections()
				syscall.Kill(pid, syscall.SIGCONT) // let it see the end of its input and exit
				cuts <- cut{n, k, nil}
			}()
			sum, err := Install(context.Background(), o)
			close(stop)
			cu := <-cuts
			if cu.err != nil {
				t.Fatalf("cutting the transfer: %v (install: %v)", cu.err, err)
			}
			t.Logf("cut the connection with %d of %d bytes written", cu.written, size)
			if cu.killed == 0 {
				t.Fatal("no connection was cut")
			}
			pe := checkPhaseError(t, err, sum, c.phase, "failed", f.root)
			if !errors.Is(err, remote.ErrConnection) || !pe.Changed {
				t.Fatalf("got %v (changed %v)", err, pe.Changed)
			}
			if o.IdentityDest != "" {
				if _, err := os.Stat(f.root + o.IdentityDest); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("a half-uploaded identity is at its destination: %v", err)
				}
			}

			// complete also checks that the cut upload's temp file (part
			// of the key) is gone: the upload script exits through its
			// EXIT trap even when it dies of SIGPIPE writing to the dead
			// connection.
			f.complete(t, o, true, c.after)
		})
	}
}

// TestFaultInterruptAtPhaseStart cancels the install as each phase starts,
// with "disks" laid out by a stand-in for disko. The error wraps
// context.Canceled, names the phase and says the state the disks are in;
// the new root is left unmounted; a plain re-run completes.
func TestFaultInterruptAtPhaseStart(t *testing.T) {
	base := newPipelineFixture(t)
	const laidOut = "\nthe disks are partitioned and formatted and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over"
	phases := []string{PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity, PhaseScan}
	for _, c := range []struct {
		phase   string
		changed bool
		ends    string // how the error ends: the state it left
	}{
		{phase: PhasePreflight, changed: false, ends: "\nno changes made"},
		{phase: PhaseDisko, changed: true, ends: "\nthe disks are partly laid out (the disko phase was interrupted) and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over"},
		{phase: PhaseStage, changed: true, ends: laidOut},
		{phase: PhaseIdentity, changed: true, ends: laidOut},
		{phase: PhaseScan, changed: true, ends: laidOut},
	} {
		t.Run(c.phase, func(t *testing.T) {
			t.Parallel()
			f := base.fork(t)
			disks := bindDisks{backing: t.TempDir()}
			o := f.options(t, phases...)
			o.Disks = disks
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o.OnPhase = onPhase(PhaseEvent{Phase: c.phase, State: PhaseStarted}, cancel)
			sum, err := Install(ctx, o)
			pe := checkPhaseError(t, err, sum, c.phase, "failed", disks.backing)
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), c.phase+": interrupted: ") {
				t.Fatalf("not reported as interrupted: %v", err)
			}
			if pe.Changed != c.changed || !strings.HasSuffix(err.Error(), c.ends) {
				t.Fatalf("changed %v, state:\n%v\nwant changed %v and the end:%s", pe.Changed, err, c.changed, c.ends)
			}
			if f.onInstaller(t, "mountpoint", "-q", f.root) == nil {
				t.Fatal("the new root is still mounted after the interrupt")
			}

			o.OnPhase = nil
			sum, err = Install(context.Background(), o)
			if err != nil {
				t.Fatalf("re-run: %v", err)
			}
			if got := statuses(sum); got != "preflight:done disko:done stage:done identity:done scan:done" {
				t.Fatalf("re-run's phases: %s", got)
			}
			f.checkStaged(t, disks.backing, o)
			if tmp := uploadTemps(disks.backing); len(tmp) > 0 {
				t.Errorf("upload temp files left in the new root: %v", tmp)
			}
		})
	}
}

// TestFaultInstallerOutOfSpace stages a flake bigger than the new root (a
// small tmpfs mounted there in the installer's namespace): stage fails
// saying the installer ran out of space under the root, with a hint and
// the remote error still in the chain; the half-written file is not
// recorded as staged; after the root grows, --resume stages it again,
// byte-exact.
func TestFaultInstallerOutOfSpace(t *testing.T) {
	f := newPipelineFixture(t)
	f.addFile(t, "big.bin", 12<<20)
	if err := f.onInstaller(t, "mount", "-t", "tmpfs", "-o", "size=8m", "fleet-test", f.root); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(f.srv.Root(), f.root) // the tmpfs, as this process sees it
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity)
	sum, err := Install(context.Background(), o)
	pe := checkPhaseError(t, err, sum, PhaseStage, "failed", seen)
	if want := "stage: the installer ran out of space writing under " + f.root + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got:\n%v\nwant it to start %q", err, want)
	}
	if first, _, _ := strings.Cut(err.Error(), "\n"); !strings.Contains(first, "No space left on device") {
		t.Fatalf("the first line does not give the cause: %q", first)
	}
	if !strings.Contains(err.Error(), "\nhint: ") || !pe.Changed {
		t.Fatalf("no hint, or claims no changes: %v", err)
	}
	var ee *remote.ExitError
	if !errors.As(err, &ee) || ee.StderrLine("No space left on device") == "" {
		t.Fatalf("the remote error is not in the chain: %v", err)
	}
	if st, err := os.Stat(filepath.Join(seen, "etc/nixos/big.bin")); err == nil && st.Size() >= 12<<20 {
		t.Fatalf("big.bin is whole (%d bytes) on a root of 8 MiB?", st.Size())
	}
	rec, err := os.ReadFile(filepath.Join(f.srv.Root(), recordDir, "install-nas.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(rec, &r); err != nil || !slices.Equal(r.Done, []string{PhasePreflight}) {
		t.Fatalf("the record after the failed stage: %s (%v)", rec, err)
	}

	if err := f.onInstaller(t, "mount", "-o", "remount,size=256m", f.root); err != nil {
		t.Fatal(err)
	}
	o.Resume = true
	sum, err = Install(context.Background(), o)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := statuses(sum); got != "preflight:done stage:done identity:done" {
		t.Fatalf("resumed phases: %s", got)
	}
	f.checkStaged(t, seen, o)
	if tmp := uploadTemps(seen); len(tmp) > 0 {
		t.Errorf("upload temp files left in the new root: %v", tmp)
	}
}

// fork gives one case its own copy of the fixture's flake (locking the same
// secrets repository), its own new root and scan root, and its own sshd.
func (f *pipelineFixture) fork(t *testing.T) *pipelineFixture {
	t.Helper()
	g := *f
	g.flakeDir = filepath.Join(t.TempDir(), "flake")
	nixtest.Run(t, "/", nil, "cp", "-a", f.flakeDir, g.flakeDir)
	g.root, g.scanDir = t.TempDir(), t.TempDir()
	g.srv = sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line}})
	return &g
}

// addFile adds a tracked file of n bytes (a pattern that does not repeat
// at any power-of-two period) to the flake.
func (f *pipelineFixture) addFile(t *testing.T, name string, n int) {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	if err := os.WriteFile(filepath.Join(f.flakeDir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	nixtest.Git(t, f.flakeDir, "add", name)
}

// onInstaller runs a command on the installer (in the sshd's mount
// namespace) over a connection of its own.
func (f *pipelineFixture) onInstaller(t *testing.T, args ...string) error {
	t.Helper()
	c, err := remote.Dial(context.Background(), remote.Target{User: f.srv.User, Host: f.srv.Host, Port: f.srv.Port},
		remote.Options{HostKey: remote.HostKeyPolicy{Pin: f.srv.Fingerprint()},
			Auth: remote.Auth{IdentityFiles: []string{f.key.Path}, AgentSocket: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Run(context.Background(), remote.Cmd{Args: args})
	return err
}

// checkStaged fails t unless root (the new root as this process sees it)
// holds every tracked file of the flake byte for byte, the secrets input
// hashing to the lock's narHash, and the identity at its destination.
func (f *pipelineFixture) checkStaged(t *testing.T, root string, o Options) {
	t.Helper()
	for _, name := range strings.Split(nixtest.Git(t, f.flakeDir, "ls-files"), "\n") {
		want, err := os.ReadFile(filepath.Join(f.flakeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(filepath.Join(root, "etc/nixos", name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("staged %s: %d bytes (%v), want %d identical", name, len(got), err, len(want))
		}
	}
	in, _ := f.lock.Input("secrets")
	if h, err := flake.NarHash(filepath.Join(root, "var/lib/fleet/inputs/secrets")); err != nil || h != in.Locked.NarHash {
		t.Errorf("staged secrets hash to %s (%v), the lock says %s", h, err, in.Locked.NarHash)
	}
	dest := o.IdentityDest
	if dest == "" {
		dest = f.spec.IdentityPaths[0]
	}
	want, err := os.ReadFile(o.Identity)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, dest)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("identity at %s: %d bytes (%v), want %d identical", dest, len(got), err, len(want))
	}
}

// uploadTemps lists remote.Upload's temp files under root.
func uploadTemps(root string) []string {
	var tmp []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".fleet-upload.") {
			tmp = append(tmp, p)
		}
		return nil
	})
	return tmp
}

// checkPhaseError fails t unless err is a PhaseError for phase, the
// summary ends with phase in status, and "no changes made" is said exactly
// when Changed is false, and then only with root (as this process sees
// it) empty.
func checkPhaseError(t *testing.T, err error, sum *Summary, phase, status, root string) *PhaseError {
	t.Helper()
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != phase || !errors.Is(err, ErrPhase) || !strings.HasPrefix(err.Error(), phase+": ") {
		t.Fatalf("got %v, want a %s PhaseError", err, phase)
	}
	if n := len(sum.Phases); n == 0 || sum.Phases[n-1].Phase != phase || sum.Phases[n-1].Status != status {
		t.Fatalf("summary: %s, want %s:%s last", statuses(sum), phase, status)
	}
	claims := strings.Contains(err.Error(), "no changes made")
	if claims == pe.Changed {
		t.Fatalf("Changed = %v but the message says:\n%v", pe.Changed, err)
	}
	if claims {
		if ents, _ := os.ReadDir(root); len(ents) != 0 {
			t.Fatalf("claims no changes, but the new root holds %v", ents)
		}
	}
	return pe
}

// statuses is "phase:status ..." of a summary.
func statuses(sum *Summary) string {
	var s []string
	for _, p := range sum.Phases {
		s = append(s, p.Phase+":"+p.Status)
	}
	return strings.Join(s, " ")
}

// onPhase is an OnPhase hook that calls fn, once, when the pipeline
// reaches at's phase and state.
func onPhase(at PhaseEvent, fn func()) func(PhaseEvent) {
	var once sync.Once
	return func(ev PhaseEvent) {
		if ev.Phase == at.Phase && ev.State == at.State {
			once.Do(fn)
		}
	}
}

// bindDisks stands in for disko: the "disks" are a directory on this
// machine bind-mounted at the new root in the installer's namespace.
// Unmounting keeps what they hold, as real disks do.
type bindDisks struct{ backing string }

func (d bindDisks) Devices() []string { return nil }

func (d bindDisks) Plan(mode disko.Mode, root string) ([]string, error) {
	return []string{fmt.Sprintf("%+v %s at %s", mode, d.backing, root)}, nil
}

// Apply does the mode's one step, and says so.
func (d bindDisks) Apply(ctx context.Context, r remote.Runner, mode disko.Mode, root string, step func(done, total int, name string)) error {
	scripts := map[disko.Mode]string{
		{Destroy: true, Format: true, Mount: true}: `set -eu; if mountpoint -q "$2"; then umount -R "$2"; fi; find "$1" -mindepth 1 -delete; mkdir -p "$2"; mount --bind "$1" "$2"`,
		{Mount: true}:   `set -eu; mountpoint -q "$2" || mount --bind "$1" "$2"`,
		{Unmount: true}: `set -eu; if mountpoint -q "$2"; then umount -R "$2"; fi`,
	}
	s, ok := scripts[mode]
	if !ok {
		return fmt.Errorf("bindDisks: no mode %+v", mode)
	}
	name := fmt.Sprintf("bind %s at %s", d.backing, root)
	if _, err := r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", s, "fake-disko", d.backing, root}, Label: name}); err != nil {
		return err
	}
	step(1, 1, name)
	return nil
}

// paddedAgeIdentity writes an age identity file of about n bytes (comment
// lines, then the key) and returns its path.
func paddedAgeIdentity(t *testing.T, n int) string {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "# padding line %d so that the upload of this file takes a while\n", i)
	}
	b.WriteString(id.String() + "\n")
	p := filepath.Join(t.TempDir(), "age.key")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a process on this machine (the installer's too: the sshd only
// has a mount namespace of its own).
type proc struct {
	pid, ppid int
	argv      []string
}

func readProc(pid int) (proc, bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		return proc{}, false
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return proc{}, false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])) // state ppid ...
	if len(f) < 2 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return proc{pid: pid, ppid: ppid, argv: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")}, true
}

// procState is the state letter of pid ("T" when stopped), or "".
func procState(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// stopMidWrite waits for a process matching match, then lets it run a
// millisecond at a time until the file matching glob holds some but not
// all of its want bytes, and leaves it stopped (SIGSTOP) there: the
// transfer stalls inside the file (SSH flow control holds the rest). It
// returns the pid and the bytes written. Closing stop gives up.
func stopMidWrite(match func(proc) bool, glob string, want int64, stop <-chan struct{}) (int, int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	pid := 0
	for pid == 0 {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if p, ok := readProc(n); ok && match(p) {
				pid = n
				break
			}
		}
		if pid != 0 {
			break
		}
		select {
		case <-stop:
			return 0, 0, errors.New("the install ended before the writer appeared")
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, 0, errors.New("the writer did not appear")
		}
	}
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return 0, 0, fmt.Errorf("stop %d: %w", pid, err)
		}
		for i := 0; i < 1000 && procState(pid) != "T"; i++ {
			time.Sleep(100 * time.Microsecond)
		}
		var n int64 // the biggest match: the upload's checksum file is beside its temp file
		ms, _ := filepath.Glob(glob)
		for _, m := range ms {
			if st, err := os.Stat(m); err == nil {
				n = max(n, st.Size())
			}
		}
		switch {
		case n >= want:
			syscall.Kill(pid, syscall.SIGCONT)
			return 0, 0, fmt.Errorf("all %d bytes of %s were written before the writer could be stopped", n, glob)
		case n > 0:
			return pid, n, nil
		}
		syscall.Kill(pid, syscall.SIGCONT)
		time.Sleep(time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	return 0, 0, fmt.Errorf("%s was not written", glob)
}

// TestFaultResumeAfterInterrupt: the interrupt's message promises that
// --resume continues after the completed phases; the interrupt unmounted
// the disks, so the resumed run mounts them again (Disks mode "mount") and
// writes to them, not to the bare directory under the installer's root.
func TestFaultResumeAfterInterrupt(t *testing.T) {
	f := newPipelineFixture(t)
	disks := bindDisks{backing: t.TempDir()}
	o := f.options(t, PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity, PhaseScan)
	o.Disks = disks
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.OnPhase = onPhase(PhaseEvent{Phase: PhaseIdentity, State: PhaseStarted}, cancel)
	if _, err := Install(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	o.OnPhase, o.Resume = nil, true
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := statuses(sum); got != "preflight:done disko:resumed stage:resumed identity:done scan:done" {
		t.Fatalf("resumed phases: %s", got)
	}
	if f.onInstaller(t, "mountpoint", "-q", f.root) != nil {
		t.Error("the new root is not mounted after --resume")
	}
	f.checkStaged(t, disks.backing, o)
}
