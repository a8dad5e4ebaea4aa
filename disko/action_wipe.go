package disko

import (
	"context"
	"fmt"
)

// Wipe erases every signature on a disk and its partitions (wipefs), for
// destroy. A disk with destroy = false has no Wipe step.
type Wipe struct{ always }

func (*Wipe) Kind() string { return "wipe" }

func (*Wipe) act(ctx context.Context, a *applier, st *Step) error {
	nums, _, err := a.devNums(ctx, st.Device)
	if err != nil {
		return err
	}
	for _, name := range nums {
		if "/dev/"+name != st.Device {
			if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", "/dev/" + name}); err != nil {
				return err
			}
		}
	}
	return a.runCmds(ctx, st)
}

func (*Wipe) verify(ctx context.Context, a *applier, st *Step) error {
	if t, err := a.blkType(ctx, st.Device, true); err != nil || t != "" {
		return fmt.Errorf("blkid still finds %q on %s after wipefs: %w", t, st.Device, ErrVerify)
	}
	return nil
}
