package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetnix/fleet/facts"
)

// preflight checks everything it can before anything is touched: the
// machine is an installer of the host's architecture with the programs
// the install runs (which decides who fetches the secrets input), its
// disks are there, free (but for an old install destroy takes down) and
// big enough, the layout's tools are there, the identity has its place
// on the host and decrypts every declared secret; it takes the scan's
// baseline and fetches the secrets into RAM.
func (in *job) preflight(ctx context.Context) error {
	f, err := facts.Gather(ctx, in.c)
	if err != nil {
		return err
	}
	if !f.Installer && !in.o.Force {
		return fmt.Errorf("%s is not a NixOS installer: %s\nhint: boot it from the NixOS installer image, or pass --force to install from this system anyway", in.c.Host(), f.InstallerReason)
	}
	if err := in.checkPrograms(ctx); err != nil {
		return err
	}
	// The baseline is what the installer held before this install began
	// (before anything is fetched through the agent): a resumed run keeps
	// the one it recorded then. A dry run's scan only says what it would look
	// at, so it takes none (it reads every writable filesystem).
	if in.base.Keys == nil && !in.o.DryRun {
		if in.base, err = in.takeBaseline(ctx); err != nil {
			return err
		}
	}
	if in.evalThere {
		if err := in.evalOnInstaller(ctx); err != nil {
			return err
		}
	}
	o := in.o
	if o.Spec.System != "" && f.System != o.Spec.System {
		return fmt.Errorf("%s is %s but host %s is built for %s\nhint: boot an installer of the host's architecture, or fix nixpkgs.hostPlatform", in.c.Host(), f.System, o.Spec.Name, o.Spec.System)
	}
	if o.Disks != nil && in.runs(PhaseDisko) {
		if err := in.checkDisks(f); err != nil {
			return err
		}
		if dc, ok := o.Disks.(DiskChecker); ok {
			mode := o.DiskOptions.layOut()
			if in.done(PhaseDisko) {
				mode = mountIt
			}
			if in.erased, err = dc.Preflight(ctx, in.c, mode, o.Root); err != nil {
				return err
			}
			for _, t := range in.erased {
				for _, w := range t.TakeDown {
					o.Log.Info("destroy takes down first", "host", in.c.Host(), "phase", PhasePreflight, "disk", t.Name, "what", w)
				}
			}
		}
	}
	if in.runs(PhaseIdentity) || in.runs(PhaseVerify) {
		if err := in.checkIdentity(); err != nil {
			return err
		}
	}
	if o.HardwareConfig.Backend != "" {
		if err := in.hardwareConfig(ctx); err != nil {
			return err
		}
	}
	if in.runs(PhaseStage) && !in.done(PhaseStage) && !in.fetchLocal && !in.fetched {
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
		if inUse := in.inUse(d); len(inUse) > 0 {
			return fmt.Errorf("disk %s is in use: %s\nhint: unmount it (fleet disko apply --mode unmount) or pick another disk", dev, strings.Join(inUse, ", "))
		}
		if ds, ok := o.Disks.(DiskSizer); ok {
			if need := ds.MinSize(dev); d.SizeBytes < need {
				return fmt.Errorf("disk %s is too small: %s, and host %s's layout needs at least %s\nhint: point the layout at a bigger disk with --device NAME=PATH, or shrink its fixed-size partitions", dev, facts.HumanBytes(d.SizeBytes), o.Spec.Name, facts.HumanBytes(need))
			}
		}
	}
	return nil
}

// inUse is why disk d must not be touched. What is built on it (an md
// array, a dm device: "held by md127") is left to the disk layout when it
// takes such things down (a DiskChecker: disko's destroy does, and its
// preflight refuses what is also built on another disk); mounts, swap and
// the running root are always refused.
func (in *job) inUse(d facts.Disk) []string {
	if _, ok := in.o.Disks.(DiskChecker); !ok {
		return d.InUse
	}
	var out []string
	for _, r := range d.InUse {
		if !strings.HasPrefix(r, "held by ") && !strings.Contains(r, " held by ") {
			out = append(out, r)
		}
	}
	return out
}

// checkIdentity: the identity exists, is readable, and decrypted every
// declared secret locally (o.Decrypted).
func (in *job) checkIdentity() error {
	o := in.o
	if in.escrowed == nil && o.Identity == "" {
		return errors.New("no decryption identity\nhint: pass --host-identity with the key the host decrypts its secrets with, or --host-identity-age with its escrow")
	}
	key, name, err := in.identityKey()
	if err != nil {
		return err
	}
	if in.escrowed == nil {
		defer clear(key)
	}
	pl, err := in.placement(key, name)
	if err != nil {
		return err
	}
	made := "none: the identity is the host key"
	if pl.hostKey != nil {
		made = pl.hostKey.Type + " at " + pl.hostKey.Path
	}
	o.Log.Info("the identity's place on the host", "host", in.c.Host(), "phase", PhasePreflight, "identity", pl.dest, "generated_host_key", made)
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
