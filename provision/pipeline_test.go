package provision

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// pipelineFixture is an operator's flake (a git repo locking a secrets
// repo by rev and narHash with the real nix) and a test sshd standing in
// for the installer's SSH. The "new root" is a directory on this machine.
type pipelineFixture struct {
	flakeDir, secretsDir, root, scanDir string
	lock                                *flake.Lock
	spec                                *Spec
	key                                 sshtest.Key
	srv                                 *sshtest.Server
}

func newPipelineFixture(t *testing.T) *pipelineFixture {
	t.Helper()
	nixtest.Require(t, "nix", "git")
	f := &pipelineFixture{secretsDir: t.TempDir(), flakeDir: t.TempDir(), root: t.TempDir(), scanDir: t.TempDir()}
	nixtest.Git(t, f.secretsDir, "init", "-q", "-b", "main")
	os.MkdirAll(filepath.Join(f.secretsDir, "hosts/nas"), 0o755)
	os.WriteFile(filepath.Join(f.secretsDir, "openai-key.age"), []byte("age-encryption.org/v1 (ciphertext)"), 0o644)
	os.WriteFile(filepath.Join(f.secretsDir, "hosts/nas/smb.age"), []byte("ciphertext"), 0o644)
	nixtest.Git(t, f.secretsDir, "add", "-A")
	nixtest.Git(t, f.secretsDir, "commit", "-qm", "secrets")
	nixtest.Git(t, f.flakeDir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(f.flakeDir, "flake.nix"), []byte(`{ inputs.secrets = { url = "git+file://`+f.secretsDir+`"; flake = false; }; outputs = { self, secrets }: { }; }`), 0o644)
	os.WriteFile(filepath.Join(f.flakeDir, "untracked.nix"), []byte("{}"), 0o644)
	nixtest.Git(t, f.flakeDir, "add", "flake.nix")
	nixtest.Lock(t, f.flakeDir)
	nixtest.Git(t, f.flakeDir, "add", "flake.nix", "flake.lock")
	var err error
	if f.lock, err = flake.ReadLock(filepath.Join(f.flakeDir, "flake.lock")); err != nil {
		t.Fatal(err)
	}
	f.spec = &Spec{Name: "nas", System: "x86_64-linux", Secrets: map[string]Secret{
		"openai-key": {File: "openai-key.age"}, "smb": {File: "hosts/nas/smb.age"},
	}, IdentityPaths: []string{"/etc/ssh/ssh_host_ed25519_key"}}
	f.spec.Normalize()
	f.key = sshtest.NewKey(t, "ed25519", "", "op")
	f.srv = sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line}})
	return f
}

func (f *pipelineFixture) options(t *testing.T, phases ...string) Options {
	id := sshtest.NewKey(t, "ed25519", "", "nas-identity")
	return Options{
		Host: HostSource{Name: "nas", FlakeDir: f.flakeDir}, Spec: f.spec,
		Target: remote.Target{User: f.srv.User, Host: f.srv.Host, Port: f.srv.Port},
		Dial: remote.Options{HostKey: remote.HostKeyPolicy{Pin: f.srv.Fingerprint()},
			Auth: remote.Auth{IdentityFiles: []string{f.key.Path}, AgentSocket: "none"}},
		Root: f.root, Phases: phases, Force: true,
		Identity:  id.Path,
		Decrypted: map[string]string{"openai-key": "x", "smb": "y"},
		ScanRoots: []string{f.scanDir},
		Log:       log.New(testLog{t}),
	}
}

func TestPipelineStageIdentityScan(t *testing.T) {
	f := newPipelineFixture(t)
	o := f.options(t, PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity, PhaseScan)
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	// The flake: tracked files only.
	if _, err := os.Stat(filepath.Join(f.root, "etc/nixos/flake.lock")); err != nil {
		t.Fatal("flake.lock not staged")
	}
	if _, err := os.Stat(filepath.Join(f.root, "etc/nixos/untracked.nix")); !os.IsNotExist(err) {
		t.Fatal("an untracked file was staged: Nix would not see it")
	}
	// The secrets at the locked rev, without .git, hashing to the lock's narHash.
	staged := filepath.Join(f.root, "var/lib/fleet/inputs/secrets")
	if b, _ := os.ReadFile(filepath.Join(staged, "hosts/nas/smb.age")); string(b) != "ciphertext" {
		t.Fatalf("staged secret: %q", b)
	}
	if _, err := os.Stat(filepath.Join(staged, ".git")); !os.IsNotExist(err) {
		t.Fatal(".git staged")
	}
	in, _ := f.lock.Input("secrets")
	if h, _ := flake.NarHash(staged); h != in.Locked.NarHash {
		t.Fatalf("staged tree %s, lock %s", h, in.Locked.NarHash)
	}
	// The identity is the host key (identityPaths = host keys): 0600 root, with .pub.
	idPath := filepath.Join(f.root, "etc/ssh/ssh_host_ed25519_key")
	st, err := os.Stat(idPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity: %v %v", st, err)
	}
	want, _ := os.ReadFile(o.Identity)
	if got, _ := os.ReadFile(idPath); !bytes.Equal(got, want) {
		t.Fatal("identity content differs")
	}
	if pub, _ := os.ReadFile(idPath + ".pub"); !strings.HasPrefix(string(pub), "ssh-ed25519 ") {
		t.Fatalf("pub %q", pub)
	}
	// The RAM mirror and record of the fetch are gone; one connection did it all.
	if _, err := os.Stat(secretsMirror); !os.IsNotExist(err) {
		// (the sshd's /run is private: the mirror lived there)
	}
	if sum.Connections != 1 {
		t.Fatalf("connections = %d, want 1", sum.Connections)
	}
	var names []string
	for _, p := range sum.Phases {
		names = append(names, p.Phase+":"+p.Status)
	}
	if strings.Join(names, " ") != "preflight:done disko:done stage:done identity:done scan:done" {
		t.Fatalf("phases: %v", names)
	}

	// A key planted outside the new root fails the scan, named; resume runs only scan.
	os.WriteFile(filepath.Join(f.scanDir, "leak"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n"), 0o600)
	o.Resume = true
	sum, err = Install(context.Background(), o)
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseScan || !strings.Contains(err.Error(), "private key material in "+filepath.Join(f.scanDir, "leak")) {
		t.Fatalf("scan: %v", err)
	}
	if got := sum.Phases[0].Phase + ":" + sum.Phases[0].Status; got != "preflight:done" || sum.Phases[1].Status != "resumed" {
		t.Fatalf("resume: %+v", sum.Phases)
	}
}

func TestPipelineMissingRevTouchesNothing(t *testing.T) {
	f := newPipelineFixture(t)
	// Rewrite the secrets repo's history: the locked rev is gone.
	nixtest.Git(t, f.secretsDir, "commit", "-q", "--amend", "-m", "rewritten")
	nixtest.Git(t, f.secretsDir, "reflog", "expire", "--expire=now", "--all")
	nixtest.Git(t, f.secretsDir, "gc", "-q", "--prune=now")
	o := f.options(t)
	o.Phases = []string{PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity}
	_, err := Install(context.Background(), o)
	in, _ := f.lock.Input("secrets")
	want := "preflight: the secrets repository file://" + f.secretsDir + " has no commit " + in.Locked.Rev + " (locked in flake.lock)\nhint: push it, or update the lock with nix flake update secrets\nno changes made"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("the new root was touched: %v", ents)
	}
}

func TestPipelineIdentityCannotDecrypt(t *testing.T) {
	f := newPipelineFixture(t)
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity)
	o.Decrypted = map[string]string{"smb": "y"}
	_, err := Install(context.Background(), o)
	if err == nil || !strings.HasPrefix(err.Error(), "preflight: identity "+o.Identity+" cannot decrypt openai-key\nhint:") || !strings.HasSuffix(err.Error(), "\nno changes made") {
		t.Fatalf("got %v", err)
	}
}

func TestPipelineDryRunChangesNothing(t *testing.T) {
	f := newPipelineFixture(t)
	o := f.options(t)
	o.Phases = []string{PhasePreflight, PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan}
	o.DryRun = true
	var out bytes.Buffer
	o.Out = &out
	o.Force = true
	// nixos-install is not on this machine: dry-run must still list the command.
	o.Phases = []string{PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan}
	if _, err := Install(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"[stage]", "unpack tar into " + f.root + "/etc/nixos", "[identity]", "upload " + f.root + "/etc/ssh/ssh_host_ed25519_key", "[install]", "nixos-install --root " + f.root + " --flake '" + f.root + "/etc/nixos#nas' --no-root-passwd --no-channel-copy --override-input secrets path:" + f.root + "/var/lib/fleet/inputs/secrets", "[scan]"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("dry-run output lacks %q:\n%s", w, out.String())
		}
	}
	if ents, _ := os.ReadDir(f.root); len(ents) != 0 {
		t.Fatalf("dry-run touched the new root: %v", ents)
	}
}

// testLog sends the pipeline's logs to the test's log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestPipelineConnectionKilledDuringStageThenResume drops the connection
// in the middle of staging a large flake; the run fails naming the phase,
// and --resume completes it with every byte in place.
func TestPipelineConnectionKilledDuringStageThenResume(t *testing.T) {
	f := newPipelineFixture(t)
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(f.flakeDir, "big.bin"), big, 0o644)
	nixtest.Git(t, f.flakeDir, "add", "big.bin")
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity)
	killed := make(chan int, 1)
	go func() {
		// Wait for the remote tar to be receiving, then cut the connection
		// (time-bound, not count-bound: on a loaded machine sleeps run long).
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			if st, err := os.Stat(filepath.Join(f.root, "etc/nixos/big.bin")); err == nil && st.Size() > 0 {
				killed <- f.srv.KillConnections()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		killed <- 0
	}()
	_, err := Install(context.Background(), o)
	if n := <-killed; n == 0 {
		t.Fatal("the stage finished before the connection could be cut")
	}
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseStage || !errors.Is(err, remote.ErrConnection) || !pe.Changed {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "no changes made") {
		t.Fatal("claims no changes after staging began")
	}
	o.Resume = true
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(f.root, "etc/nixos/big.bin"))
	if !bytes.Equal(got, big) {
		t.Fatalf("big.bin: %d bytes after resume, want %d identical", len(got), len(big))
	}
	var st []string
	for _, p := range sum.Phases {
		st = append(st, p.Phase+":"+p.Status)
	}
	if strings.Join(st, " ") != "preflight:done stage:done identity:done" {
		t.Fatalf("resumed phases: %v", st)
	}
}

// TestPipelineInterruptReportsState cancels the install (as SIGINT does)
// while stage runs after a (recorded) disko phase: the error says it was
// interrupted, the remote command stops, and the new root is unmounted.
func TestPipelineInterruptReportsState(t *testing.T) {
	f := newPipelineFixture(t)
	big := make([]byte, 64<<20)
	os.WriteFile(filepath.Join(f.flakeDir, "big.bin"), big, 0o644)
	nixtest.Git(t, f.flakeDir, "add", "big.bin")
	// The "disks": a tmpfs mounted at the new root (in the sshd's mount
	// namespace, where the "installer" runs), as disko would leave it.
	c, err := remote.Dial(context.Background(), remote.Target{User: f.srv.User, Host: f.srv.Host, Port: f.srv.Port}, f.options(t).Dial)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"mount", "-t", "tmpfs", "-o", "size=256m", "fleet-test", f.root}}); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(f.srv.Root(), f.root, "etc/nixos/big.bin")
	o := f.options(t, PhasePreflight, PhaseDisko, PhaseStage)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Poll until the file is being written (time-bound, not
		// count-bound: on a loaded machine sleeps run long).
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			if st, err := os.Stat(seen); err == nil && st.Size() > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err = Install(ctx, o)
	cancel()
	var pe *PhaseError
	if !errors.As(err, &pe) || pe.Phase != PhaseStage || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "interrupted: ") || !strings.HasSuffix(err.Error(), "the disks are partitioned and formatted and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over") {
		t.Fatalf("state not reported: %v", err)
	}
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"mountpoint", "-q", f.root}}); err == nil {
		t.Fatal("the new root is still mounted after the interrupt")
	}
}

// TestPipelineFetchThroughScopedAgent: the secrets input lives on a private
// git server (git-shell, deploy key only); the "installer" fetches it
// through fleet's scoped agent backed by a real ssh-agent holding the
// deploy key and another key. Only the deploy key is allowed
// (--forward-key); afterwards the socket is gone (the scan checks it on the
// same connection) and the summary says what was allowed and used.
func TestPipelineFetchThroughScopedAgent(t *testing.T) {
	nixtest.Require(t, "git", "nix")
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
	personal := sshtest.NewKey(t, "ed25519", "", "personal")
	gs := sshtest.StartGitServer(t, deploy)
	f := newPipelineFixture(t)
	f.lockToGitServer(t, gs)
	o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity, PhaseScan)
	o.Dial.HostKey.KnownHosts = []string{gs.WriteKnownHosts(t)} // the operator knows the git server
	op := sshtest.StartAgent(t, deploy, personal)
	o.Forward = agentfwd.Options{Keys: []string{deploy.Fingerprint()}, Socket: op.Socket}
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(f.root, "var/lib/fleet/inputs/secrets", gs.File)); err != nil || len(b) == 0 {
		t.Fatalf("staged %s: %v", gs.File, err)
	}
	if want := "the installer used key " + deploy.Fingerprint() + " 1 time while fetching the secrets"; sum.Forwarding != want {
		t.Fatalf("forwarding summary %q, want %q", sum.Forwarding, want)
	}
	if want := "allowed key " + deploy.Fingerprint() + " (from --forward-key), at most 4 signatures within 5m0s of forwarding"; sum.ForwardPolicy != want {
		t.Fatalf("forwarding policy %q, want %q", sum.ForwardPolicy, want)
	}
	if sum.Connections != 1 {
		t.Fatalf("%d connections, want 1", sum.Connections)
	}
}
