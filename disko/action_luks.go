package disko

import (
	"context"
	"fmt"
)

// LuksFormat makes a LUKS header (cryptsetup luksFormat), the key on stdin.
type LuksFormat struct{ formatter }

func (*LuksFormat) Kind() string { return "luksFormat" }

// LuksOpen opens a LUKS device as /dev/mapper/NAME. In the format phase
// it opens with --persistent, as disko does, so flags like allow-discards
// are written into the LUKS2 header.
type LuksOpen struct{}

func (*LuksOpen) Kind() string { return "luksOpen" }

func (*LuksOpen) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return a.exists(ctx, st.Device), nil
}

func (*LuksOpen) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*LuksOpen) verify(ctx context.Context, a *applier, st *Step) error {
	if !a.exists(ctx, st.Device) {
		return fmt.Errorf("%s missing after cryptsetup open: %w", st.Device, ErrVerify)
	}
	return nil
}

// LuksAddKey enrolls one of additionalKeyFiles (a path on the installer),
// unless it opens the device already.
type LuksAddKey struct{}

func (*LuksAddKey) Kind() string { return "luksAddKey" }

// opens tests the key file of st (its command's 5th argument) against
// the device.
func (*LuksAddKey) opens(ctx context.Context, a *applier, st *Step) bool {
	c := st.Cmds[0] // cryptsetup luksAddKey DEV FILE ...
	_, err := a.out(ctx, "cryptsetup", "open", "--test-passphrase", "--key-file", c[3], a.resolve(ctx, c[2]))
	return err == nil
}

func (k *LuksAddKey) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return k.opens(ctx, a, st), nil
}

func (*LuksAddKey) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (k *LuksAddKey) verify(ctx context.Context, a *applier, st *Step) error {
	if !k.opens(ctx, a, st) {
		return fmt.Errorf("%s does not open %s after luksAddKey: %w", st.Cmds[0][3], st.Cmds[0][2], ErrVerify)
	}
	return nil
}

// LuksClose closes /dev/mapper/NAME.
type LuksClose struct{}

func (*LuksClose) Kind() string { return "luksClose" }

func (*LuksClose) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	return !a.exists(ctx, st.Device), nil
}

func (*LuksClose) act(ctx context.Context, a *applier, st *Step) error { return a.runCmds(ctx, st) }

func (*LuksClose) verify(ctx context.Context, a *applier, st *Step) error {
	if a.exists(ctx, st.Device) {
		return fmt.Errorf("%s still open after cryptsetup close: %w", st.Device, ErrVerify)
	}
	return nil
}
