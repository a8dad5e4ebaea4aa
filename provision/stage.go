package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// flakeDest is where the flake's source is staged in the new root.
func (in *job) flakeDest() string { return in.o.Root + "/etc/nixos" }

// inputsDir holds the staged secrets input in the new root.
const inputsDir = "/var/lib/fleet/inputs"

// stage streams the flake's source into the new root and lays the secrets
// input out at its locked rev, checked against flake.lock.
func (in *job) stage(ctx context.Context) error {
	src, err := flake.LocalSource(ctx, in.o.LocalRunner, in.o.Host.FlakeDir)
	if err != nil {
		return err
	}
	in.changed = true
	var include []string
	if src.Git {
		include = src.Files
	}
	if err := remote.UploadTree(ctx, in.r, src.Dir, in.flakeDest(), remote.TreeOptions{Include: include}); err != nil {
		return writeFailed(err, in.o.Root, "stage the flake")
	}
	sin, ok, err := in.secretsInput()
	if err != nil || !ok {
		return err
	}
	dest, err := underRoot(in.o.Root, inputsDir+"/"+sin.Name)
	if err != nil {
		return fmt.Errorf("stage the secrets input: %w", err)
	}
	in.staged = dest
	if in.fetchLocal {
		dir, err := in.localSecrets(ctx, sin)
		if err != nil {
			return err
		}
		if err := in.stageTree(ctx, dir, dest); err != nil {
			return writeFailed(err, in.o.Root, "stage the secrets input")
		}
		return nil
	}
	// From the RAM mirror preflight fetched: no network, no agent.
	script := `set -eu
mirror=$1 rev=$2 dest=$3
export GIT_ALLOW_PROTOCOL=file
rm -rf -- "$dest"; mkdir -p -- "$(dirname -- "$dest")"
git clone -q --no-checkout -- "$mirror" "$dest"
git -C "$dest" -c advice.detachedHead=false switch -q --detach --end-of-options "$rev"
rm -rf -- "$dest/.git" "$mirror"
if command -v nix >/dev/null 2>&1; then nix --extra-experimental-features nix-command hash path -- "$dest"; fi
`
	res, err := in.r.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script, "fleet-stage", secretsMirror, sin.Locked.Rev, dest}, Label: "stage secrets at " + sin.Locked.Rev})
	if err != nil {
		return writeFailed(err, in.o.Root, "stage the secrets input")
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

// localSecrets is the secrets input at its locked rev in a directory on
// this machine, without .git, checked against the lock's narHash: made
// once per install (cloned from --secrets-dir when given, else from the
// locked URL with the operator's own git and SSH set-up), for an
// installer that fetches nothing; removed when the install ends.
func (in *job) localSecrets(ctx context.Context, sin flake.Input) (string, error) {
	if in.localTree != "" {
		return in.localTree, nil
	}
	tmp, err := os.MkdirTemp("", "fleet-secrets-")
	if err != nil {
		return "", err
	}
	in.cleanups = append(in.cleanups, func() { os.RemoveAll(tmp) })
	dir := filepath.Join(tmp, "src")
	from := sin.Locked.CloneURL()
	if in.o.Host.SecretsDir != "" {
		from = in.o.Host.SecretsDir
	}
	l := in.o.LocalRunner
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "clone", "-q", "--no-checkout", "--", from, dir}, Env: gitEnv}); err != nil {
		return "", fmt.Errorf("fetch the secrets input locally: %w", err)
	}
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "-c", "advice.detachedHead=false", "switch", "-q", "--detach", "--end-of-options", sin.Locked.Rev}}); err != nil {
		return "", fmt.Errorf("the secrets repository %s has no commit %s (locked in flake.lock): %w", from, sin.Locked.Rev, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".git")); err != nil {
		return "", err
	}
	if sin.Locked.NarHash != "" {
		got, err := flake.NarHash(dir)
		if err != nil {
			return "", err
		}
		if same, _ := flake.SameHash(got, sin.Locked.NarHash); !same {
			return "", fmt.Errorf("the secrets at %s hash to %s, but flake.lock says %s", sin.Locked.Rev, got, sin.Locked.NarHash)
		}
	}
	in.localTree = dir
	return dir, nil
}
