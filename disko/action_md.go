package disko

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/remote"
)

// MDCreate makes an md array, then clears any partition table the new
// array shows (disko's sgdisk --zap-all: an array over partitions that
// held one can surface a stale table). An array of that name that runs
// already is kept when its level matches.
type MDCreate struct {
	Name     string
	Level    int
	Metadata string   // as the layout has it ("default" for mdadm's)
	Members  []string // disko's member paths
}

func (*MDCreate) Kind() string { return "mdcreate" }

// mdLevel is the running array's level (raid1 -> 1), -1 if unknown.
func mdLevel(ctx context.Context, a *applier, node string) int {
	out, _ := a.out(ctx, "mdadm", "--detail", "--export", node)
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "MD_LEVEL=raid"); ok {
			n, err := strconv.Atoi(v)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func (m *MDCreate) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	node, err := a.mdByName(ctx, st.Device)
	if err != nil || node == "" {
		return false, err
	}
	if l := mdLevel(ctx, a, node); l != m.Level {
		return false, mismatch(st.Node, fmt.Sprintf("array %s (%s) runs at level %d, the layout wants %d", st.Device, node, l, m.Level))
	}
	return true, nil
}

func (m *MDCreate) act(ctx context.Context, a *applier, st *Step) error {
	if err := a.run(ctx, st, st.Cmds[0]); err != nil {
		return err
	}
	if a.udev {
		a.out(ctx, "udevadm", "settle")
	}
	node, err := a.mdByName(ctx, st.Device)
	if err != nil || node == "" {
		return fmt.Errorf("array %s not found after mdadm --create: %w", st.Device, ErrVerify)
	}
	err = a.run(ctx, st, []string{"sgdisk", "--zap-all", node})
	// sgdisk destroys the tables but exits 2 when the main one it read
	// was corrupt (an array over old disks, with --assume-clean, shows a
	// stale backup gpt): what counts is that none is left.
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Code == 2 {
		if t, berr := a.blkType(ctx, node, true); berr == nil && t == "" {
			return nil
		}
	}
	return err
}

func (m *MDCreate) verify(ctx context.Context, a *applier, st *Step) error {
	node, err := a.mdByName(ctx, st.Device)
	if err != nil || node == "" {
		return fmt.Errorf("array %s missing after mdadm --create: %w", st.Device, ErrVerify)
	}
	if l := mdLevel(ctx, a, node); l != m.Level {
		return fmt.Errorf("array %s (%s) runs at level %d, want %d: %w", st.Device, node, l, m.Level, ErrVerify)
	}
	return nil
}

// MDAssemble assembles an array stopped by an unmount from its members.
type MDAssemble struct{ Name string }

func (*MDAssemble) Kind() string { return "mdassemble" }

func (*MDAssemble) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	node, err := a.mdByName(ctx, st.Device)
	return node != "", err
}

func (*MDAssemble) act(ctx context.Context, a *applier, st *Step) error {
	if err := a.runCmds(ctx, st); err != nil {
		return err
	}
	if a.udev {
		a.out(ctx, "udevadm", "settle")
	}
	return nil
}

func (*MDAssemble) verify(ctx context.Context, a *applier, st *Step) error {
	if node, err := a.mdByName(ctx, st.Device); err != nil || node == "" {
		return fmt.Errorf("array %s missing after mdadm --assemble: %w", st.Device, ErrVerify)
	}
	return nil
}

// MDStop stops an array, found by name (the /dev/md/NAME link is udev's).
type MDStop struct{ Name string }

func (*MDStop) Kind() string { return "mdstop" }

func (*MDStop) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	node, err := a.mdByName(ctx, st.Device)
	return node == "", err
}

func (*MDStop) act(ctx context.Context, a *applier, st *Step) error {
	node, err := a.mdByName(ctx, st.Device)
	if err != nil {
		return err
	}
	return a.run(ctx, st, []string{"mdadm", "--stop", node})
}

func (*MDStop) verify(ctx context.Context, a *applier, st *Step) error {
	if node, _ := a.mdByName(ctx, st.Device); node != "" {
		return fmt.Errorf("%s (%s) still running after mdadm --stop: %w", st.Device, node, ErrVerify)
	}
	return nil
}
