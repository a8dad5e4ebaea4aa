package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// The phases of an install, in order.
const (
	PhasePreflight = "preflight"
	PhaseDisko     = "disko"
	PhaseStage     = "stage"
	PhaseIdentity  = "identity"
	PhaseInstall   = "install"
	PhaseScan      = "scan"
	PhaseReboot    = "reboot"
	PhaseVerify    = "verify"
)

// AllPhases is every phase, in order (nixos-anywhere's --phases values
// kexec and disko map onto these; kexec is not needed: fleet expects a
// live installer).
var AllPhases = []string{PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan, PhaseReboot, PhaseVerify}

// ErrPhase wraps the failure of a phase; PhaseError says which.
var ErrPhase = errors.New("install phase failed")

// PhaseError is a failed phase, with whether anything was changed yet.
type PhaseError struct {
	Phase   string
	Err     error
	Changed bool // false: nothing on the target was touched
}

func (e *PhaseError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Phase, e.Err)
	if !e.Changed {
		msg += "\nno changes made"
	}
	return msg
}
func (e *PhaseError) Unwrap() []error { return []error{ErrPhase, e.Err} }

// Disks lays out and unmounts the host's disks (the disko package).
type Disks interface {
	// Devices are the disk device paths the layout uses (after overrides).
	Devices() []string
	// Apply runs a disko mode ("destroy,format,mount", "mount", "unmount")
	// under root through r.
	Apply(ctx context.Context, r remote.Runner, mode, root string) error
	// Plan returns the commands Apply would run, for --dry-run.
	Plan(mode, root string) ([]string, error)
}

// Forwarder is a scoped forwarded agent on one connection (agentfwd).
type Forwarder interface {
	Hook() remote.SessionHook // request forwarding on one session
	Revoke()                  // close every forwarded channel
	Summary() string          // "the installer used key SHA256:... 2 times ..."
}

// Options configure one install.
type Options struct {
	Spec     *Spec
	FlakeDir string      // the operator's flake directory
	Lock     *flake.Lock // its flake.lock (nil: no secrets input)
	Target   remote.Target
	Dial     remote.Options // how to connect (host-key policy for the installer)
	Root     string         // the new root on the installer (default /mnt)
	Phases   []string       // nil: AllPhases
	DryRun   bool
	Resume   bool
	Force    bool // install on a machine that is not a NixOS installer

	// EvalOnInstaller: Spec holds only the host's Name; preflight
	// evaluates the rest on the installer (see evalOnInstaller) and then
	// calls Prepare, which completes the options from the spec (local
	// decryption, disk layout) before anything is changed.
	EvalOnInstaller bool
	Prepare         func(ctx context.Context, o *Options) error

	// Identity is the local private key file installed as the host's
	// decryption identity at IdentityDest (default: the spec's first
	// identity path). When IdentityDest is one of the spec's host keys,
	// the identity is also the SSH host key.
	Identity     string
	IdentityDest string
	// Decrypted maps each declared secret to the sha256 (hex) of its local
	// decryption with Identity: preflight proves the identity decrypts
	// everything, verify compares the host's files with it.
	Decrypted map[string]string

	Disks        Disks                            // nil: no disko phase work
	Forward      func(c *remote.Client) Forwarder // nil: no agent forwarding
	SecretsFetch string                           // "installer" (default) or "local"
	LocalRunner  remote.Runner                    // for local git (default remote.Local)
	ExtraFiles   string                           // a local tree copied onto the new root
	InstallArgs  []string                         // extra nixos-install arguments (--option k v ...)
	// ScanRoots limits the scan to these directories (default: every
	// writable local filesystem of the installer).
	ScanRoots  []string
	RebootWait time.Duration // default 10 minutes
	Log        *log.Logger
	Out        io.Writer // dry-run listing and progress; nil: discard
}

// PhaseResult is one phase in the summary.
type PhaseResult struct {
	Phase    string        `json:"phase"`
	Status   string        `json:"status"` // done, skipped, resumed, failed, dry-run
	Duration time.Duration `json:"duration_ns"`
}

// Summary is what an install did.
type Summary struct {
	Host        string        `json:"host"`
	Phases      []PhaseResult `json:"phases"`
	Connections int64         `json:"ssh_connections"`
	Forwarding  string        `json:"forwarding,omitempty"`
	HostKey     string        `json:"host_key,omitempty"` // the installed system's pinned key
	Verify      *Report       `json:"verify,omitempty"`
}

// run is the state of one install.
type run struct {
	o       Options
	c       *remote.Client // the current boot's connection
	r       remote.Runner  // c, or a printer in dry-run
	sum     *Summary
	changed bool // something on the target was modified
	rec     record
	base    scanBaseline
	hostPub string // authorized_keys form of the installed host key
	hostKey []byte // its private key (OpenSSH PEM), when fleet generated it
	staged  string // where the secrets input was staged under Root
	// evaluating: the spec is being evaluated on the installer, so the
	// secrets input is fetched before its secrets are known.
	evaluating bool
	fetched    bool // the secrets mirror was fetched in this run
}

// Install runs the phases against the installer at o.Target.
func Install(ctx context.Context, o Options) (*Summary, error) {
	if o.Root == "" {
		o.Root = "/mnt"
	}
	if o.Phases == nil {
		o.Phases = AllPhases
	}
	if o.LocalRunner == nil {
		o.LocalRunner = &remote.Local{Log: o.Log}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.SecretsFetch == "" {
		o.SecretsFetch = "installer"
	}
	if o.RebootWait == 0 {
		o.RebootWait = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = log.New(io.Discard)
	}
	for _, p := range o.Phases {
		if !contains(AllPhases, p) {
			return nil, fmt.Errorf("unknown phase %q\nhint: phases are %s", p, strings.Join(AllPhases, ","))
		}
	}
	start := remote.ConnectionsOpened()
	in := &run{o: o, sum: &Summary{Host: o.Target.String()}}
	defer func() {
		if in.c != nil {
			in.c.Close()
		}
	}()
	c, err := remote.Dial(ctx, o.Target, o.Dial)
	if err != nil {
		return in.sum, &PhaseError{Phase: PhasePreflight, Err: err}
	}
	in.c, in.r = c, c
	if o.DryRun {
		in.r = &printer{out: o.Out, host: c.Host(), read: c}
	}
	if err := in.loadRecord(ctx); err != nil {
		return in.sum, &PhaseError{Phase: PhasePreflight, Err: err}
	}
	for _, p := range AllPhases {
		if !contains(o.Phases, p) {
			continue
		}
		res := PhaseResult{Phase: p, Status: "done"}
		// Checks run again on resume (the machine may have changed since);
		// only the phases that change it are skipped once done.
		if in.done(p) && !isCheck(p) {
			res.Status = "resumed"
			o.Log.Info("already done, skipping", "host", c.Host(), "phase", p)
			// An interrupt unmounted the layout: mount it again before
			// anything is written under the new root.
			if p == PhaseDisko && o.Disks != nil && !o.DryRun {
				if err := o.Disks.Apply(remote.WithPhase(ctx, p), in.r, "mount", o.Root); err != nil {
					res.Status = "failed"
					in.sum.Phases = append(in.sum.Phases, res)
					return in.sum, &PhaseError{Phase: p, Err: fmt.Errorf("mount the laid-out disks again: %w", err), Changed: in.changed}
				}
			}
			in.sum.Phases = append(in.sum.Phases, res)
			continue
		}
		pctx := remote.WithPhase(ctx, p)
		o.Log.Info("started", "host", in.r.Host(), "phase", p)
		t0 := time.Now()
		err := in.phase(pctx, p)
		res.Duration = time.Since(t0)
		if err != nil {
			res.Status = "failed"
			in.sum.Phases = append(in.sum.Phases, res)
			in.sum.Connections = remote.ConnectionsOpened() - start
			o.Log.Error("failed", "host", in.r.Host(), "phase", p, "err", err)
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted: %w%s", err, in.afterInterrupt(ctx, p))
			}
			return in.sum, &PhaseError{Phase: p, Err: err, Changed: in.changed}
		}
		if o.DryRun {
			res.Status = "dry-run"
		}
		in.sum.Phases = append(in.sum.Phases, res)
		o.Log.Info("finished", "host", in.r.Host(), "phase", p, "took", res.Duration.Round(time.Millisecond))
		if !o.DryRun && p != PhaseReboot && p != PhaseVerify {
			if err := in.markDone(ctx, p); err != nil {
				in.sum.Phases[len(in.sum.Phases)-1].Status = "failed"
				in.sum.Connections = remote.ConnectionsOpened() - start
				return in.sum, &PhaseError{Phase: p, Err: fmt.Errorf("record the phase as done: %w", err), Changed: in.changed}
			}
		}
	}
	in.sum.Connections = remote.ConnectionsOpened() - start
	return in.sum, nil
}

func (in *run) phase(ctx context.Context, p string) error {
	switch p {
	case PhasePreflight:
		return in.preflight(ctx)
	case PhaseDisko:
		return in.disko(ctx)
	case PhaseStage:
		return in.stage(ctx)
	case PhaseIdentity:
		return in.identity(ctx)
	case PhaseInstall:
		return in.install(ctx)
	case PhaseScan:
		return in.scan(ctx)
	case PhaseReboot:
		return in.reboot(ctx)
	case PhaseVerify:
		return in.verify(ctx)
	}
	return fmt.Errorf("unknown phase %q", p)
}

// record is what the installer remembers of this install, for --resume.
type record struct {
	Host    string       `json:"host"`
	Done    []string     `json:"done"`
	Base    scanBaseline `json:"baseline"`
	HostPub string       `json:"host_pub,omitempty"`
	Staged  string       `json:"staged,omitempty"`
}

// recordDir is on the installer's RAM filesystem: a reboot forgets it.
const recordDir = "/run/fleet"

func (in *run) recordPath() string { return recordDir + "/install-" + in.o.Spec.Name + ".json" }

// loadRecord reads the record for --resume, or clears it for a fresh run.
func (in *run) loadRecord(ctx context.Context) error {
	in.rec = record{Host: in.o.Spec.Name}
	if in.o.DryRun {
		return nil
	}
	if !in.o.Resume {
		_, err := in.c.Run(ctx, remote.Cmd{Args: []string{"rm", "-f", in.recordPath()}})
		return err
	}
	res, err := in.c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `cat "$1" 2>/dev/null || true`, "fleet-record", in.recordPath()}})
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(res.Stdout))) == 0 {
		in.o.Log.Warn("nothing to resume: no record of an earlier run on the installer, starting from the beginning", "host", in.c.Host())
		return nil
	}
	if err := json.Unmarshal(res.Stdout, &in.rec); err != nil {
		return fmt.Errorf("read the install record %s: %w\nhint: run without --resume to start clean", in.recordPath(), err)
	}
	in.base, in.hostPub, in.staged = in.rec.Base, in.rec.HostPub, in.rec.Staged
	// The earlier run may have changed the target after its last recorded
	// phase (a half-done stage records nothing): never claim otherwise.
	in.changed = len(in.rec.Done) > 0
	return nil
}

// afterInterrupt leaves the machine in a state it can say: the new root
// unmounted (so the disks can be inspected or the run resumed), and a line
// on what the disks hold. It runs on a context of its own: the install's
// was cancelled.
func (in *run) afterInterrupt(ctx context.Context, p string) string {
	if !in.changed || in.o.DryRun || in.c == nil {
		return ""
	}
	disksTouched := p == PhaseDisko || contains(in.rec.Done, PhaseDisko)
	if !disksTouched {
		return "\nthe disks were not touched; a re-run starts over"
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	state := "partitioned and formatted"
	if p == PhaseDisko {
		state = "partly laid out (the disko phase was interrupted)"
	}
	var uerr error
	if in.o.Disks != nil {
		uerr = in.o.Disks.Apply(cctx, in.c, "unmount", in.o.Root)
	} else {
		_, uerr = in.c.Run(cctx, remote.Cmd{Args: []string{"sh", "-c", `if mountpoint -q "$1"; then umount -R "$1"; fi`, "fleet-umount", in.o.Root}})
	}
	if uerr != nil {
		return fmt.Sprintf("\nthe disks are %s and still mounted under %s (unmounting failed: %v)", state, in.o.Root, uerr)
	}
	return fmt.Sprintf("\nthe disks are %s and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over", state)
}

// isCheck: the phase only looks, so it is never skipped.
func isCheck(p string) bool { return p == PhasePreflight || p == PhaseScan || p == PhaseVerify }

// done reports whether a resumed run already completed phase p.
func (in *run) done(p string) bool { return in.o.Resume && contains(in.rec.Done, p) }

func (in *run) markDone(ctx context.Context, p string) error {
	if !contains(in.rec.Done, p) {
		in.rec.Done = append(in.rec.Done, p)
	}
	in.rec.Base, in.rec.HostPub, in.rec.Staged = in.base, in.hostPub, in.staged
	b, err := json.Marshal(in.rec)
	if err != nil {
		return err
	}
	if _, err := in.c.Run(ctx, remote.Cmd{Args: []string{"mkdir", "-p", "-m", "0700", recordDir}}); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	if err := remote.Upload(ctx, in.c, strings.NewReader(string(b)), int64(len(b)), in.recordPath(), remote.UploadOptions{Mode: 0o600}); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// printer is the dry-run Runner: it prints what would run. Read-only
// commands (the preflight's) still run on read.
type printer struct {
	out  io.Writer
	host string
	read remote.Runner
}

func (p *printer) Host() string { return p.host }

func (p *printer) Run(ctx context.Context, c remote.Cmd) (*remote.Result, error) {
	name := c.Label
	if name == "" {
		name = c.String()
	}
	fmt.Fprintf(p.out, "[%s] %s: %s\n", remote.PhaseOf(ctx), p.host, name)
	return &remote.Result{}, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
