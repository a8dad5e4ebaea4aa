package provision

import (
	"context"
	"errors"

	"github.com/fleetnix/fleet/disko"
)

// disko lays out the disks: destroy, format, mount under Root (or the
// --disko-mode), keeping the --keep disks as they are.
func (in *job) disko(ctx context.Context) error {
	if in.o.Disks == nil {
		in.o.Log.Warn("no disk layout: skipping disko; the new root must already be mounted", "host", in.r.Host(), "phase", PhaseDisko, "root", in.o.Root)
		return nil
	}
	if in.o.DryRun {
		for _, t := range in.erased {
			for _, w := range t.TakeDown {
				in.listed("disk %s (%s): take down first: %s", t.Name, t.Device, w)
			}
		}
		cmds, err := in.o.Disks.Plan(in.o.DiskOptions.layOut(), in.o.Root)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			in.listed("%s", c)
		}
		return nil
	}
	prev := in.changed
	in.changed = true
	err := in.o.Disks.Apply(ctx, in.r, in.o.DiskOptions.layOut(), in.o.Root, in.step)
	var se *disko.StepError
	if errors.Is(err, disko.ErrRefused) && !errors.As(err, &se) {
		in.changed = prev // refused before the first step (a kept disk that does not match)
	}
	return err
}
