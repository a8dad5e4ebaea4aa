package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// evalDir holds, in the installer's RAM, what --eval-on installer
// evaluates: the flake's source and the secrets input at its locked rev.
const evalDir = recordDir + "/eval"

// evalOnInstaller evaluates the host spec on the installer, for operators
// without a local Nix: the flake's source (as staging would send it) goes
// to the installer's RAM; the secrets input is fetched through the scoped
// agent as preflight always does, and laid out at the locked rev next to
// it (an installer without git gets the tree from this machine instead); one nix eval there, with the secrets input overridden by that copy,
// gives the spec. Then what depends on the spec is derived (see
// completeSpec) before anything is changed. The copies are
// removed whatever happens; nothing touches the disks.
func (in *job) evalOnInstaller(ctx context.Context) (err error) {
	if in.o.Spec == nil || in.o.Spec.Name == "" {
		return errors.New("evaluate on the installer: no host name")
	}
	host := in.o.Spec.Name
	if _, err := in.c.Run(ctx, remote.Cmd{Args: []string{"mkdir", "-p", "-m", "0700", recordDir}}); err != nil {
		return err
	}
	defer func() {
		if _, rerr := in.c.Run(context.WithoutCancel(ctx), remote.Cmd{Args: []string{"rm", "-rf", evalDir}}); rerr != nil && err == nil {
			err = fmt.Errorf("remove %s on the installer: %w", evalDir, rerr)
		}
	}()
	src, err := flake.LocalSource(ctx, in.o.LocalRunner, in.o.Host.FlakeDir)
	if err != nil {
		return err
	}
	var include []string
	if src.Git {
		include = src.Files
	}
	if err := remote.UploadTree(ctx, in.c, src.Dir, evalDir+"/flake", remote.TreeOptions{Include: include}); err != nil {
		return fmt.Errorf("send the flake to the installer for evaluation: %w", err)
	}
	in.evaluating = true
	sin, ok, err := in.secretsInput()
	in.evaluating = false
	if err != nil && !errors.Is(err, flake.ErrNoInput) {
		return err
	}
	var nixArgs []string
	if ok && in.fetchLocal {
		// No git there: the tree at the locked rev, from this machine.
		dir, err := in.localSecrets(ctx, sin)
		if err != nil {
			return err
		}
		if err := remote.UploadTree(ctx, in.c, dir, evalDir+"/secrets", remote.TreeOptions{}); err != nil {
			return fmt.Errorf("send the secrets input to the installer for evaluation: %w", err)
		}
		nixArgs = []string{"--override-input", sin.Name, "path:" + evalDir + "/secrets"}
	} else if ok {
		in.evaluating = true
		err := in.fetchSecrets(ctx)
		in.evaluating = false
		if err != nil {
			return err
		}
		script := `set -eu
mirror=$1 rev=$2 dest=$3
mkdir -p "$dest"
git -C "$mirror" archive --end-of-options "$rev" | tar -x -C "$dest"`
		if _, err := in.c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script, "fleet-eval-secrets", secretsMirror, sin.Locked.Rev, evalDir + "/secrets"}}); err != nil {
			return fmt.Errorf("lay out the secrets input for evaluation: %w", err)
		}
		nixArgs = []string{"--override-input", sin.Name, "path:" + evalDir + "/secrets"}
	}
	spec, err := EvalSpec(ctx, in.c, evalDir+"/flake", host, nixArgs...)
	if err != nil {
		fetched := "no input"
		if ok {
			fetched = "the input " + sin.Name
		}
		if !strings.Contains(err.Error(), "\nhint: ") {
			err = fmt.Errorf("%w\nhint: the installer has only what fleet sent it: the flake, and %s; if the evaluation fetched another input, name the one that holds the .age files with --secrets-input", err, fetched)
		}
		return fmt.Errorf("on the installer: %w", err)
	}
	// The store paths are the installer's; the inputs' follow from the
	// lock, and the flake's own files are the ones sent there.
	if err := resolveSources(ctx, in.o.LocalRunner, spec, in.o.Host.FlakeDir, in.o.Host.SecretsInput); err != nil {
		return err
	}
	if ok && spec.needsInput() && spec.SecretsInput != sin.Name {
		return fmt.Errorf("host %s's .age files are in the input %s, but the installer fetched %s to evaluate it\nhint: pass --secrets-input %s", host, spec.SecretsInput, sin.Name, spec.SecretsInput)
	}
	in.o.Spec, in.specPending = spec, false
	in.o.Log.Info("evaluated the host spec on the installer", "host", in.c.Host(), "phase", PhasePreflight, "secrets", len(spec.Secrets))
	return in.completeSpec(ctx)
}
