package provision

import "time"

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

// PhaseState is where a phase of an install is.
type PhaseState string

// The states a phase goes through. A phase that runs goes started, then
// finished or failed; one an earlier run completed is resumed instead.
const (
	PhaseStarted  PhaseState = "started"  // about to run
	PhaseFinished PhaseState = "finished" // ran; not yet recorded as done on the installer
	PhaseFailed   PhaseState = "failed"
	PhaseResumed  PhaseState = "resumed" // done by an earlier run, skipped
)

// PhaseEvent is a phase changing state. [Options.OnPhase] gets each one
// synchronously, on the install's goroutine, before the install goes on:
// a hook that acts there acts at exactly that point.
type PhaseEvent struct {
	Phase string
	State PhaseState
	Took  time.Duration // for finished and failed
	Err   error         // for failed
}

// Step is progress inside a phase: the step it is at, as Done of Total
// (Total is 0 when the phase cannot know it yet). [Options.OnStep] gets
// one each time a phase moves on.
type Step struct {
	Phase string
	Done  int
	Total int
	Name  string // what the step does, one line
}
