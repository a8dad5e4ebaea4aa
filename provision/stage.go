package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// disko lays out the disks: destroy, format, mount under Root.
func (in *run) disko(ctx context.Context) error {
	if in.o.Disks == nil {
		in.o.Log.Warn("no disk layout: skipping disko; the new root must already be mounted", "host", in.r.Host(), "phase", PhaseDisko, "root", in.o.Root)
		return nil
	}
	if in.o.DryRun {
		cmds, err := in.o.Disks.Plan("destroy,format,mount", in.o.Root)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			fmt.Fprintf(in.o.Out, "[%s] %s: %s\n", PhaseDisko, in.r.Host(), c)
		}
		return nil
	}
	in.changed = true
	return in.o.Disks.Apply(ctx, in.r, "destroy,format,mount", in.o.Root)
}

// flakeDest is where the flake's source is staged in the new root.
func (in *run) flakeDest() string { return in.o.Root + "/etc/nixos" }

// stage streams the flake's source into the new root and lays the secrets
// input out at its locked rev, checked against flake.lock.
func (in *run) stage(ctx context.Context) error {
	src, err := flake.LocalSource(ctx, in.o.LocalRunner, in.o.FlakeDir)
	if err != nil {
		return err
	}
	in.changed = true
	var include []string
	if src.Git {
		include = src.Files
	}
	if err := remote.UploadTree(ctx, in.r, src.Dir, in.flakeDest(), remote.TreeOptions{Include: include}); err != nil {
		if ns := in.outOfSpace(err); ns != nil {
			return ns
		}
		return fmt.Errorf("stage the flake: %w", err)
	}
	sin, ok, err := in.secretsInput()
	if err != nil || !ok {
		return err
	}
	dest := in.o.Root + "/var/lib/fleet/inputs/" + sin.Name
	in.staged = dest
	if in.o.SecretsFetch == "local" {
		return in.stageSecretsLocal(ctx, sin, dest)
	}
	// From the RAM mirror preflight fetched: no network, no agent.
	script := `set -eu
mirror=$1 rev=$2 dest=$3
rm -rf "$dest"; mkdir -p "$(dirname "$dest")"
git clone -q --no-checkout "$mirror" "$dest"
git -C "$dest" -c advice.detachedHead=false checkout -q --detach "$rev"
rm -rf "$dest/.git" "$mirror"
if command -v nix >/dev/null 2>&1; then nix --extra-experimental-features nix-command hash path "$dest"; fi
`
	res, err := in.r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script, "fleet-stage", secretsMirror, sin.Locked.Rev, dest}, Label: "stage secrets at " + sin.Locked.Rev})
	if err != nil {
		if ns := in.outOfSpace(err); ns != nil {
			return ns
		}
		return fmt.Errorf("stage the secrets input: %w", err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "" && sin.Locked.NarHash != "" && !in.o.DryRun {
		same, err := flake.SameHash(got, sin.Locked.NarHash)
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("the staged secrets at %s hash to %s, but flake.lock says %s\nhint: the repository's history changed under the lock; run nix flake update %s and check what changed", sin.Locked.Rev, got, sin.Locked.NarHash, sin.Name)
		}
	} else if sin.Locked.NarHash != "" && !in.o.DryRun {
		in.o.Log.Warn("no nix on the installer: the secrets' narHash was not checked (the rev was)", "host", in.r.Host(), "phase", PhaseStage)
	}
	return nil
}

// noSpace is a write on the installer that failed for want of space: one
// line naming the new root and the failed write, and a hint. The remote
// command's error stays in the chain.
type noSpace struct {
	root, cause string
	err         error
}

func (e *noSpace) Error() string {
	return fmt.Sprintf("the installer ran out of space writing under %s: %s\nhint: run df -h %s on the installer: mount the target disks there (the disko phase does) or give the root filesystem more room, then run fleet install --resume", e.root, e.cause, e.root)
}

func (e *noSpace) Unwrap() error { return e.err }

// outOfSpace returns err as a noSpace when a remote command failed with
// ENOSPC (its stderr says so), else nil.
func (in *run) outOfSpace(err error) *noSpace {
	var ee *remote.ExitError
	if !errors.As(err, &ee) {
		return nil
	}
	if l := ee.StderrLine("No space left on device"); l != "" {
		return &noSpace{root: in.o.Root, cause: l, err: err}
	}
	return nil
}

// stageSecretsLocal fetches the secrets input on this machine and streams
// it to dest (--secrets-fetch local).
func (in *run) stageSecretsLocal(ctx context.Context, sin flake.Input, dest string) error {
	tmp, err := os.MkdirTemp("", "fleet-secrets-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "src")
	l := in.o.LocalRunner
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "clone", "-q", "--no-checkout", sin.Locked.CloneURL(), dir}}); err != nil {
		return fmt.Errorf("fetch the secrets input locally: %w", err)
	}
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", sin.Locked.Rev}}); err != nil {
		return fmt.Errorf("the secrets repository %s has no commit %s (locked in flake.lock): %w", sin.Locked.CloneURL(), sin.Locked.Rev, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		return err
	}
	if sin.Locked.NarHash != "" {
		got, err := flake.NarHash(dir)
		if err != nil {
			return err
		}
		if same, _ := flake.SameHash(got, sin.Locked.NarHash); !same {
			return fmt.Errorf("the secrets at %s hash to %s, but flake.lock says %s", sin.Locked.Rev, got, sin.Locked.NarHash)
		}
	}
	if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"rm", "-rf", dest}}); err != nil {
		return err
	}
	if err := remote.UploadTree(ctx, in.r, dir, dest, remote.TreeOptions{}); err != nil {
		if ns := in.outOfSpace(err); ns != nil {
			return ns
		}
		return err
	}
	return nil
}
