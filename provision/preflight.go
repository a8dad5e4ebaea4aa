package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fleetnix/fleet/facts"
)

// preflight checks everything it can before anything is touched: the
// machine is an installer of the host's architecture, its disks are there,
// free and big enough, the identity decrypts every declared secret; it
// takes the scan's baseline and fetches the secrets into RAM.
func (in *job) preflight(ctx context.Context) error {
	if in.evalThere {
		if err := in.evalOnInstaller(ctx); err != nil {
			return err
		}
	}
	o := in.o
	f, err := facts.Gather(ctx, in.c)
	if err != nil {
		return err
	}
	if !f.Installer && !o.Force {
		return fmt.Errorf("%s is not a NixOS installer: %s\nhint: boot it from the NixOS installer image, or pass --force to install from this system anyway", in.c.Host(), f.InstallerReason)
	}
	if o.Spec.System != "" && f.System != o.Spec.System {
		return fmt.Errorf("%s is %s but host %s is built for %s\nhint: boot an installer of the host's architecture, or fix nixpkgs.hostPlatform", in.c.Host(), f.System, o.Spec.Name, o.Spec.System)
	}
	if o.Disks != nil && in.runs(PhaseDisko) {
		if err := in.checkDisks(f); err != nil {
			return err
		}
	}
	if in.runs(PhaseInstall) && !f.HasNixOSInst {
		return fmt.Errorf("nixos-install not found on %s\nhint: boot the NixOS installer image", in.c.Host())
	}
	if in.runs(PhaseIdentity) || in.runs(PhaseVerify) {
		if err := in.checkIdentity(); err != nil {
			return err
		}
	}
	// The baseline is what the installer held before this install began:
	// a resumed run keeps the one it recorded then.
	if in.base.Keys == nil {
		if in.base, err = in.takeBaseline(ctx); err != nil {
			return err
		}
	}
	if in.runs(PhaseStage) && !in.done(PhaseStage) && o.SecretsFetch == FetchInstaller && !in.fetched {
		return in.fetchSecrets(ctx)
	}
	return nil
}

// checkDisks: every disk of the layout is on the machine, not the
// installer's own, free, and big enough. Once disko is done (a resumed
// run), the layout's own mounts and holders are expected: only the disks'
// presence is checked.
func (in *job) checkDisks(f *facts.Facts) error {
	o := in.o
	laidOut := in.done(PhaseDisko)
	for _, dev := range o.Disks.Devices() {
		d, ok := f.Disk(dev)
		if !ok {
			return fmt.Errorf("disk %s not found on %s\nhint: fleet facts --target %s lists its disks; point the layout at one with --device NAME=PATH", dev, in.c.Host(), o.Target)
		}
		if laidOut {
			continue
		}
		if d.Root {
			return fmt.Errorf("disk %s holds the installer's running root\nhint: pick another disk with --device NAME=PATH", dev)
		}
		// Only a disk about to be erased must be free: disko refuses a
		// disk in use that it would write to, and a kept disk's arrays
		// may well run already.
		dk, keeps := o.Disks.(DiskKeeper)
		if !o.DiskOptions.layOut().Destroy || (keeps && dk.Kept(dev)) {
			continue
		}
		if !d.Free() {
			return fmt.Errorf("disk %s is in use: %s\nhint: unmount it (fleet disko apply --mode unmount) or pick another disk", dev, strings.Join(d.InUse, ", "))
		}
		if ds, ok := o.Disks.(DiskSizer); ok {
			if need := ds.MinSize(dev); d.SizeBytes < need {
				return fmt.Errorf("disk %s is too small: %s, and host %s's layout needs at least %s\nhint: point the layout at a bigger disk with --device NAME=PATH, or shrink its fixed-size partitions", dev, facts.HumanBytes(d.SizeBytes), o.Spec.Name, facts.HumanBytes(need))
			}
		}
	}
	return nil
}

// checkIdentity: the identity exists, is readable, and decrypted every
// declared secret locally (o.Decrypted).
func (in *job) checkIdentity() error {
	o := in.o
	name := o.Identity
	switch {
	case in.escrowed != nil:
		name = in.escrowed.Name
	case o.Identity == "":
		return errors.New("no decryption identity\nhint: pass --host-identity with the key the host decrypts its secrets with")
	default:
		if _, err := os.Stat(o.Identity); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
	}
	var missing []string
	for _, n := range o.Spec.SecretNames() {
		if _, ok := o.Decrypted[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("identity %s cannot decrypt %s\nhint: rekey them to its public key (fleet secrets rekey) or use the right identity", name, strings.Join(missing, ", "))
	}
	return nil
}
