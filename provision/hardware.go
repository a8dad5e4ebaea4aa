package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/hwconfig"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// HardwareConfig asks for the host's hardware configuration to be written
// locally before the install, as nixos-anywhere's
// --generate-hardware-config BACKEND PATH does.
type HardwareConfig struct {
	// Backend is hwconfig.BackendGenerateConfig (a
	// hardware-configuration.nix) or hwconfig.BackendFacter (a
	// facter.json); "" for none.
	Backend string
	// Path is the local file written. When the install stages the flake,
	// it must be inside the flake's directory (the host's configuration
	// imports it from there), and it is staged with the flake: in a git
	// flake it is added to the index with --intent-to-add (as
	// nixos-anywhere does) so that Nix, and the stage, see it.
	Path string
}

// check refuses a request that cannot work, before anything runs.
func (h HardwareConfig) check(flakeDir string, staged bool) error {
	if h.Backend == "" {
		return nil
	}
	if err := hwconfig.CheckBackend(h.Backend); err != nil {
		return badOption("--generate-hardware-config: %v", err)
	}
	if h.Path == "" {
		return badOption("--generate-hardware-config %s: no file to write\nhint: --generate-hardware-config %s PATH", h.Backend, h.Backend)
	}
	if flakeDir == "" {
		return nil
	}
	abs, err := filepath.Abs(h.Path)
	if err != nil {
		return badOption("--generate-hardware-config %s: %v", h.Path, err)
	}
	dir, err := filepath.Abs(flakeDir)
	if err != nil {
		return badOption("--flake %s: %v", flakeDir, err)
	}
	if slices.Contains([]string{"flake.nix", "flake.lock"}, filepath.Base(abs)) && filepath.Dir(abs) == dir {
		return badOption("--generate-hardware-config %s would overwrite the flake's own %s", h.Path, filepath.Base(abs))
	}
	if rel, err := filepath.Rel(dir, abs); staged && (err != nil || !filepath.IsLocal(rel)) {
		return badOption("--generate-hardware-config %s is outside the flake %s: the install stages the flake, so the host could not import it\nhint: write it inside the flake, e.g. %s", h.Path, dir, filepath.Join(dir, "hardware-configuration.nix"))
	}
	return nil
}

// hardwareConfig writes the host's hardware configuration (in preflight,
// once the installer is known to be of the host's architecture, before
// any disk is touched): from the installer's own tool, else from what
// fleet reads of it. The file is written atomically; in a git flake an
// untracked file is added with --intent-to-add, so the stage (which
// copies what Nix sees) carries it to the installer.
func (in *job) hardwareConfig(ctx context.Context) error {
	hc := in.o.HardwareConfig
	if in.o.DryRun {
		in.listed("write %s: the hardware configuration from the installer's %s (else from its /sys and /proc)", hc.Path, hc.Backend)
		return nil
	}
	c, err := hwconfig.Generate(ctx, in.c, hc.Backend, in.o.Spec.Name)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(hc.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write the hardware configuration: %w", err)
		}
	}
	if old, err := os.ReadFile(hc.Path); err != nil || !bytes.Equal(old, c.Content) {
		if err := secrets.WriteFileAtomic(hc.Path, c.Content, 0o644); err != nil {
			return fmt.Errorf("write the hardware configuration: %w", err)
		}
	}
	in.o.Log.Info("wrote the hardware configuration", "host", in.c.Host(), "phase", PhasePreflight, "file", hc.Path,
		"by", c.Source(), "initrd", strings.Join(c.Hardware.InitrdModules(), ","), "system", c.Hardware.System)
	if err := in.trackHardwareConfig(ctx, hc.Path); err != nil {
		return err
	}
	return in.reloadInitrd(ctx)
}

// reloadInitrd takes the initrd modules the host's configuration declares
// now that its hardware configuration is written: the spec was evaluated
// before (the first-boot check compares them with the root's drivers).
// Only a spec evaluated here from the flake is evaluated again; its
// platform must not have changed (the installer was checked against it).
func (in *job) reloadInitrd(ctx context.Context) error {
	o := &in.o
	if !in.specEvaluated {
		return nil
	}
	s, err := EvalSpec(ctx, o.LocalRunner, o.Host.FlakeDir, o.Host.Name, o.Host.evalOverrides(ctx, o.LocalRunner)...)
	if err != nil {
		return fmt.Errorf("evaluate %s with its hardware configuration: %w", o.Host.Name, err)
	}
	if s.System != o.Spec.System {
		return fmt.Errorf("%s's hardware configuration changed its platform from %s to %s\nhint: the host's own nixpkgs.hostPlatform wins over the generated file's lib.mkDefault: set it in the host", o.Host.Name, o.Spec.System, s.System)
	}
	o.Spec.InitrdModules = s.InitrdModules
	o.Log.Info("evaluated the host again with its hardware configuration", "host", in.c.Host(), "phase", PhasePreflight,
		"system", s.System, "initrd", strings.Join(s.InitrdModules, ","))
	return nil
}

// trackHardwareConfig adds the file to a git flake's index with
// --intent-to-add when git does not track it yet: Nix copies only what
// git knows of a git flake.
func (in *job) trackHardwareConfig(ctx context.Context, path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	l := in.o.LocalRunner
	dir := filepath.Dir(abs)
	res, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "rev-parse", "--is-inside-work-tree"}})
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "true" {
		var ee *remote.ExitError
		if err != nil && !errors.As(err, &ee) && ctx.Err() == nil {
			in.o.Log.Debug("no git here: the hardware configuration is staged as a file of a path flake", "file", path)
		}
		return nil // not a git work tree: a path flake copies every file
	}
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "ls-files", "--error-unmatch", "--", abs}}); err == nil {
		return nil
	}
	if _, err := l.Run(ctx, remote.Cmd{Args: []string{"git", "-C", dir, "add", "--intent-to-add", "--force", "--", abs}}); err != nil {
		return fmt.Errorf("add the hardware configuration to the flake's git index (Nix sees only what git knows): %w", err)
	}
	in.o.Log.Info("added the hardware configuration to the flake's git index (--intent-to-add)", "file", path)
	return nil
}
