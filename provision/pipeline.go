package provision

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fleetnix/fleet/remote"
)

// byPhase runs each phase; each is in a file of its own.
var byPhase = map[string]func(*job, context.Context) error{
	PhasePreflight: (*job).preflight, // preflight.go
	PhaseDisko:     (*job).disko,     // disko.go
	PhaseStage:     (*job).stage,     // stage.go
	PhaseIdentity:  (*job).identity,  // identity.go
	PhaseInstall:   (*job).install,   // install.go
	PhaseScan:      (*job).scan,      // scan.go
	PhaseReboot:    (*job).reboot,    // reboot.go
	PhaseVerify:    (*job).verify,    // verify.go
}

// Install installs the host o names on the installer at o.Target: it
// checks the options, derives what they leave to it (prepare.go), connects
// once, and runs the phases in order. Options that are wrong are an
// [*OptionError]; a phase that fails is a [*PhaseError].
func Install(ctx context.Context, o Options) (*Summary, error) {
	o.fill()
	in := &job{o: o, sum: &Summary{Host: o.Target.String()}}
	var err error
	if err = in.o.check(); err == nil {
		in.nixOpts, err = parseNixOptions(o.NixOptions)
	}
	if err != nil {
		return in.sum, err
	}
	err = in.prepare(ctx)
	defer func() {
		if in.agent != nil {
			in.agent.close()
		}
		if in.escrowed != nil {
			clear(in.escrowed.Key)
		}
		for _, f := range in.cleanups {
			f()
		}
	}()
	if err != nil {
		return in.sum, err
	}
	start := remote.ConnectionsOpened()
	defer func() {
		if in.c != nil {
			in.c.Close()
		}
	}()
	err = in.execute(ctx)
	in.sum.Connections = remote.ConnectionsOpened() - start
	return in.sum, err
}

// execute connects and runs the phases.
func (in *job) execute(ctx context.Context) error {
	o := in.o
	in.phase = PhasePreflight
	c, err := remote.Dial(ctx, o.Target, o.Dial)
	if err != nil {
		return &PhaseError{Phase: PhasePreflight, Err: err}
	}
	in.c, in.r = c, c
	if o.DryRun {
		in.r = &printer{out: o.Out, host: c.Host(), read: c}
	}
	if err := in.loadRecord(ctx); err != nil {
		return &PhaseError{Phase: PhasePreflight, Err: err}
	}
	for _, p := range AllPhases {
		if !in.runs(p) {
			continue
		}
		in.phase = p
		// Checks run again on resume (the machine may have changed since);
		// only the phases that change it are skipped once done.
		if in.done(p) && !isCheck(p) {
			if err := in.resumed(ctx, p); err != nil {
				return err
			}
			continue
		}
		if err := in.runPhase(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// runPhase runs phase p and records it done on the installer.
func (in *job) runPhase(ctx context.Context, p string) error {
	o := in.o
	res := PhaseResult{Phase: p, Status: "done"}
	o.Log.Info("started", "host", in.r.Host(), "phase", p)
	in.phaseEvent(PhaseEvent{Phase: p, State: PhaseStarted})
	t0 := time.Now()
	err := byPhase[p](in, remote.WithPhase(ctx, p))
	res.Duration = time.Since(t0)
	if err != nil {
		return in.failed(ctx, res, err)
	}
	if o.DryRun {
		res.Status = "dry-run"
	}
	o.Log.Info("finished", "host", in.r.Host(), "phase", p, "took", res.Duration.Round(time.Millisecond))
	in.phaseEvent(PhaseEvent{Phase: p, State: PhaseFinished, Took: res.Duration})
	if !o.DryRun && p != PhaseReboot && p != PhaseVerify {
		if err := in.markDone(ctx, p); err != nil {
			return in.failed(ctx, res, fmt.Errorf("record the phase as done: %w", err))
		}
	}
	in.sum.Phases = append(in.sum.Phases, res)
	return nil
}

// resumed skips phase p, which an earlier run completed.
func (in *job) resumed(ctx context.Context, p string) error {
	in.o.Log.Info("already done, skipping", "host", in.c.Host(), "phase", p)
	in.phaseEvent(PhaseEvent{Phase: p, State: PhaseResumed})
	res := PhaseResult{Phase: p, Status: "resumed"}
	// An interrupt unmounted the layout: mount it again before anything
	// is written under the new root.
	if p == PhaseDisko && in.o.Disks != nil && !in.o.DryRun {
		if err := in.o.Disks.Apply(remote.WithPhase(ctx, p), in.r, mountIt, in.o.Root, in.step); err != nil {
			return in.failed(ctx, res, fmt.Errorf("mount the laid-out disks again: %w", err))
		}
	}
	in.sum.Phases = append(in.sum.Phases, res)
	return nil
}

// failed ends the install in phase res.Phase.
func (in *job) failed(ctx context.Context, res PhaseResult, err error) error {
	res.Status = "failed"
	in.sum.Phases = append(in.sum.Phases, res)
	in.o.Log.Error("failed", "host", in.r.Host(), "phase", res.Phase, "err", err)
	if ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w%s", err, in.afterInterrupt(ctx, res.Phase))
	}
	in.phaseEvent(PhaseEvent{Phase: res.Phase, State: PhaseFailed, Took: res.Duration, Err: err})
	return &PhaseError{Phase: res.Phase, Err: err, Changed: in.changed}
}

// afterInterrupt leaves the machine in a state it can say: the new root
// unmounted (so the disks can be inspected or the run resumed), and a line
// on what the disks hold. It runs on a context of its own: the install's
// was cancelled.
func (in *job) afterInterrupt(ctx context.Context, p string) string {
	if !in.changed || in.o.DryRun || in.c == nil {
		return ""
	}
	if p != PhaseDisko && !slices.Contains(in.rec.Done, PhaseDisko) {
		return "\nthe disks were not touched; a re-run starts over"
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	state := "partitioned and formatted"
	if p == PhaseDisko {
		state = "partly laid out (the disko phase was interrupted)"
	}
	if err := in.unmountRoot(cctx, in.c); err != nil {
		return fmt.Sprintf("\nthe disks are %s and still mounted under %s (unmounting failed: %v)", state, in.o.Root, err)
	}
	return fmt.Sprintf("\nthe disks are %s and unmounted; fleet install --resume continues after the completed phases, a plain re-run starts over", state)
}

// isCheck: the phase only looks, so it is never skipped.
func isCheck(p string) bool { return p == PhasePreflight || p == PhaseScan || p == PhaseVerify }
