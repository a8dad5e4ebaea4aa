package disko

import (
	"fmt"
	"strings"
)

// Mode is a set of phases, as disko's modes are: destroy (erase the
// disks), format (create what is missing), mount (under the root), or
// unmount alone. Provision passes one typed; ParseMode reads the flag.
type Mode struct{ Destroy, Format, Mount, Unmount bool }

// The modes an install and its recovery use.
var (
	ModeDestroyFormatMount = Mode{Destroy: true, Format: true, Mount: true}
	ModeFormatMount        = Mode{Format: true, Mount: true}
	ModeMount              = Mode{Mount: true}
	ModeUnmount            = Mode{Unmount: true}
)

// Phase is the part of a mode a step belongs to.
type Phase string

// The phases, in the order a plan runs them.
const (
	PhaseUnmount Phase = "unmount" // also destroy's first part
	PhaseDestroy Phase = "destroy"
	PhaseKeep    Phase = "keep" // kept devices checked and brought up (Options.Keep)
	PhaseFormat  Phase = "format"
	PhaseMount   Phase = "mount"
)

// ParseMode reads destroy,format,mount / format / mount / unmount (also format,mount).
func ParseMode(s string) (Mode, error) {
	var m Mode
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "destroy":
			m.Destroy = true
		case "format":
			m.Format = true
		case "mount":
			m.Mount = true
		case "unmount":
			m.Unmount = true
		default:
			return m, fmt.Errorf("mode %q: unknown phase %q\nhint: use destroy,format,mount, format, mount or unmount", s, p)
		}
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("mode %q: %w", s, err)
	}
	return m, nil
}

// Validate refuses modes that make no sense: nothing at all, unmount with
// anything else, destroy without format (blank disks are no layout).
func (m Mode) Validate() error {
	switch {
	case m == Mode{}:
		return fmt.Errorf("no phase\nhint: use destroy,format,mount, format, mount or unmount")
	case m.Unmount && (m.Destroy || m.Format || m.Mount):
		return fmt.Errorf("unmount cannot be combined with other phases")
	case m.Destroy && !m.Format:
		return fmt.Errorf("destroy needs format\nhint: use destroy,format,mount")
	}
	return nil
}

// String is the mode as ParseMode reads it.
func (m Mode) String() string {
	var p []string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.Destroy, "destroy"}, {m.Format, "format"}, {m.Mount, "mount"}, {m.Unmount, "unmount"}} {
		if x.on {
			p = append(p, x.name)
		}
	}
	return strings.Join(p, ",")
}
