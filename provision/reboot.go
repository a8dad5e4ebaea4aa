package provision

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/remote"
)

// reboot unmounts everything cleanly, reboots the machine, and waits for
// the installed system to answer SSH with the host key fleet placed.
func (in *job) reboot(ctx context.Context) error {
	o := in.o
	pin, pinType, err := in.pinnedHostKey()
	if err != nil {
		return err
	}
	if o.Disks != nil && o.DryRun {
		cmds, err := o.Disks.Plan(unmount, o.Root)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			in.listed("%s", c)
		}
	} else if err := in.unmountRoot(ctx, in.r); err != nil {
		return fmt.Errorf("unmount before reboot: %w", err)
	}
	// Detached, so the reboot outlives this session.
	if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `sync; setsid sh -c 'sleep 1; systemctl reboot || reboot -f' </dev/null >/dev/null 2>&1 &`}, Label: "reboot"}); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	if o.DryRun {
		t, _ := in.installedTarget()
		fmt.Fprintf(o.Out, "[%s] wait for %s to answer with host key %s\n", PhaseReboot, t, pin)
		return nil
	}
	t0 := time.Now()
	gone := make(chan error, 1)
	go func() { gone <- in.c.Wait() }()
	select {
	case <-gone:
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("the installer did not go down within 2 minutes of the reboot")
	case <-ctx.Done():
		return ctx.Err()
	}
	in.c.Close()
	in.c = nil
	target, opts := in.installedTarget()
	// The installed sshd may have other host keys (NixOS makes the
	// missing ones of services.openssh.hostKeys at boot): ask for the type
	// fleet placed.
	opts.HostKey = remote.HostKeyPolicy{Pin: pin, PinKeyType: pinType}
	c, took, err := remote.WaitForSSH(ctx, target, opts, o.RebootWait)
	if err != nil {
		return fmt.Errorf("the installed system did not come up: %w", err)
	}
	in.c, in.r = c, c
	in.sum.HostKey, in.sum.InstalledLogin = pin, target.String()
	o.Log.Info("installed system is up", "host", c.Host(), "phase", PhaseReboot, "user", target.User, "host_key", pin, "after", time.Since(t0).Round(time.Second), "ssh_wait", took.Round(time.Second))
	return nil
}

// installedTarget is where fleet logs in on the installed system: the
// installer's address as VerifyUser (root by default), with the
// operator's keys. The installer's login password is offered only to the
// same user: the ISO's nixos and its password, set at the installer's
// console, are not the installed system's.
func (in *job) installedTarget() (remote.Target, remote.Options) {
	t, opts := in.o.Target, in.o.Dial
	if t.User != in.o.VerifyUser {
		t.User = in.o.VerifyUser
		opts.Auth.Password, opts.Auth.PasswordFrom = nil, ""
	}
	return t, opts
}

// pinnedHostKey is the fingerprint the installed system must present,
// and the key's type.
func (in *job) pinnedHostKey() (string, string, error) {
	if in.hostPub == "" {
		return "", "", fmt.Errorf("no host key was placed in this run, so the first boot cannot be pinned\nhint: run the identity phase (or --resume a run that did)")
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(in.hostPub))
	if err != nil {
		return "", "", fmt.Errorf("host key: %w", err)
	}
	return ssh.FingerprintSHA256(pk), pk.Type(), nil
}

// unmountRoot unmounts the new root: the layout's way when there is one,
// else whatever is mounted there.
func (in *job) unmountRoot(ctx context.Context, r remote.Runner) error {
	if in.o.Disks != nil {
		return in.o.Disks.Apply(ctx, r, unmount, in.o.Root, in.step)
	}
	_, err := r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", `if mountpoint -q -- "$1"; then umount -R -- "$1"; fi`, "fleet-umount", in.o.Root}})
	return err
}
