package provision

import (
	"slices"
	"time"
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

// AllPhases is every phase, in order.
var AllPhases = []string{PhasePreflight, PhaseDisko, PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan, PhaseReboot, PhaseVerify}

// anywherePhases are nixos-anywhere's --phases values and fleet's phases
// for each. kexec has none: fleet installs from a live installer, and
// nixos-anywhere skips kexec on one too (preflight refuses a machine
// that is not an installer). install is everything nixos-anywhere's
// install step does, and reboot includes the first-boot check.
var anywherePhases = map[string][]string{
	"kexec":   nil,
	"disko":   {PhaseDisko},
	"install": {PhaseStage, PhaseIdentity, PhaseInstall, PhaseScan},
	"reboot":  {PhaseReboot, PhaseVerify},
}

// ExpandPhases reads a --phases list. A list of nixos-anywhere's names
// only (kexec, disko, install, reboot) means what it means there, with
// preflight's checks first; any other list names fleet's own phases.
func ExpandPhases(list []string) []string {
	for _, p := range list {
		if _, ok := anywherePhases[p]; !ok {
			return list
		}
	}
	out := []string{PhasePreflight}
	for _, p := range AllPhases {
		for _, a := range list {
			if slices.Contains(anywherePhases[a], p) && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

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
