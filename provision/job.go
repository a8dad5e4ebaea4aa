package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

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
	// ForwardPolicy is what the forwarded agent allowed: which keys (and
	// where that came from) and its limits. Forwarding is what the
	// installer asked of it.
	ForwardPolicy string `json:"forward_policy,omitempty"`
	Forwarding    string `json:"forwarding,omitempty"`
	// SecretsFetch says who fetched the secrets input (FetchInstaller or
	// FetchLocal), and SecretsFetchWhy why, when it was not the default.
	SecretsFetch    string `json:"secrets_fetch,omitempty"`
	SecretsFetchWhy string `json:"secrets_fetch_why,omitempty"`
	HostKey         string `json:"host_key,omitempty"` // the installed system's pinned key
	// InstalledLogin is who fleet logged in as on the installed system.
	InstalledLogin string `json:"installed_login,omitempty"`
	// Identity says where the host's decryption identity came from when
	// it was restored from its escrow: the file and the key.
	Identity string  `json:"identity,omitempty"`
	Verify   *Report `json:"verify,omitempty"`
}

// job is the state of one install.
type job struct {
	o         Options
	lock      *flake.Lock    // the flake's lock (nil: no secrets input)
	nixOpts   []nixOption    // o.NixOptions, parsed
	agent     *scopedAgent   // the agent the installer fetches through (nil: none)
	phase     string         // the phase running
	c         *remote.Client // the current boot's connection
	r         remote.Runner  // c, or a printer in dry-run
	sum       *Summary
	changed   bool // something on the target was modified
	rec       record
	base      scanBaseline
	hostPub   string // authorized_keys form of the installed host key
	staged    string // where the secrets input was staged under Root
	evalThere bool   // preflight evaluates the spec on the installer
	// specPending: the spec is a placeholder until the installer has
	// evaluated it (evalThere).
	specPending bool
	// specEvaluated: prepare evaluated the spec from the flake here (not a
	// spec file or Options.Spec), so preflight may evaluate it again once
	// it wrote the hardware configuration.
	specEvaluated bool
	// evaluating: the spec is being evaluated on the installer, so the
	// secrets input is fetched before its secrets are known.
	evaluating bool
	fetched    bool // the secrets mirror was fetched in this run
	// escrowed is the host's identity restored from its escrow
	// (Options.IdentityAge), in memory only; nil with Options.Identity.
	escrowed *secrets.HostKey
	// fetchLocal: the secrets input is fetched on this machine and
	// streamed to the installer (decideFetch), into localTree.
	fetchLocal bool
	localTree  string
	cleanups   []func() // run when Install returns
	// agentSock is the forwarded agent's socket on the installer, as the
	// fetch saw it (SSH_AUTH_SOCK): the scan checks it is gone.
	agentSock string
	// erased are the disks the disko phase erases, with what it takes
	// down on them first (preflight asks the layout).
	erased []disko.Target
}

// record is what the installer remembers of this install, for --resume.
type record struct {
	Host    string       `json:"host"`
	Done    []string     `json:"done"`
	Base    scanBaseline `json:"baseline"`
	HostPub string       `json:"host_pub,omitempty"`
	Staged  string       `json:"staged,omitempty"`
	// AgentSock is the fetch's forwarded agent socket (see job.agentSock).
	AgentSock string `json:"agent_socket,omitempty"`
}

// scanBaseline is what the installer held before fleet touched it: files
// with private key material (path -> sha256), authorized_keys sums, and
// the login user's ssh directories.
type scanBaseline struct {
	Keys       map[string]string `json:"keys"`
	Authorized map[string]string `json:"authorized_keys"`
	// Dirs are which of the login user's ~/.ssh and ~/.ssh/agent there
	// were.
	Dirs []string `json:"dirs,omitempty"`
}

// recordDir is on the installer's RAM filesystem: a reboot forgets it.
const recordDir = "/run/fleet"

func (in *job) recordPath() string { return recordDir + "/install-" + in.o.Spec.Name + ".json" }

// loadRecord reads the record for --resume, or clears it for a fresh run.
func (in *job) loadRecord(ctx context.Context) error {
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
	in.base, in.hostPub, in.staged, in.agentSock = in.rec.Base, in.rec.HostPub, in.rec.Staged, in.rec.AgentSock
	// The earlier run may have changed the target after its last recorded
	// phase (a half-done stage records nothing): never claim otherwise.
	in.changed = len(in.rec.Done) > 0
	return nil
}

// done reports whether a resumed run already completed phase p.
func (in *job) done(p string) bool { return in.o.Resume && slices.Contains(in.rec.Done, p) }

// runs reports whether phase p is one this install runs.
func (in *job) runs(p string) bool { return slices.Contains(in.o.Phases, p) }

// markDone records phase p as done on the installer.
func (in *job) markDone(ctx context.Context, p string) error {
	if !slices.Contains(in.rec.Done, p) {
		in.rec.Done = append(in.rec.Done, p)
	}
	in.rec.Base, in.rec.HostPub, in.rec.Staged, in.rec.AgentSock = in.base, in.hostPub, in.staged, in.agentSock
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

// phaseEvent reports a phase's state to the caller's hook.
func (in *job) phaseEvent(ev PhaseEvent) {
	if in.o.OnPhase != nil {
		in.o.OnPhase(ev)
	}
}

// step reports progress inside the current phase.
func (in *job) step(done, total int, name string) {
	if in.o.OnStep != nil {
		in.o.OnStep(Step{Phase: in.phase, Done: done, Total: total, Name: name})
	}
}

// listed prints a dry-run line for what a phase would do.
func (in *job) listed(format string, args ...any) {
	fmt.Fprintf(in.o.Out, "[%s] %s: %s\n", in.phase, in.r.Host(), fmt.Sprintf(format, args...))
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
