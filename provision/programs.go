package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/remote"
)

// installerPrograms are the programs preflight asks the installer about,
// in one command: what the pipeline runs there beyond the shell and
// coreutils, and beyond the disk layout's own tools (disko.Preflight
// checks those).
var installerPrograms = []string{"git", "ssh", "nix", "nixos-install", "tar", "sha256sum", "find", "awk", "grep", "setsid"}

// checkPrograms asks the installer which of installerPrograms it lacks,
// decides who fetches the secrets input (see decideFetch), and refuses
// when a program this install will run is missing, naming each with what
// it is for. Nothing has changed yet.
func (in *job) checkPrograms(ctx context.Context) error {
	missing, err := facts.MissingPrograms(ctx, in.c, installerPrograms)
	if err != nil {
		return err
	}
	if err := in.decideFetch(missing); err != nil {
		return err
	}
	o := in.o
	var lacks []string
	need := func(when bool, program, why string) {
		if when && slices.Contains(missing, program) {
			lacks = append(lacks, program+" ("+why+")")
		}
	}
	fetchThere := in.fetchesSecrets() && !in.fetchLocal
	need(fetchThere, "git", "to fetch the secrets input")
	host, _ := gitHostPort(in.secretsURL())
	need(fetchThere && host != "", "ssh", "git fetches the secrets input over ssh")
	need(in.evalThere, "nix", "to evaluate the flake there, as --eval-on installer asks")
	need(in.runs(PhaseStage) || in.evalThere || (in.runs(PhaseIdentity) && o.ExtraFiles != ""), "tar", "to unpack the flake's files")
	need(in.runs(PhaseInstall), "nixos-install", "to install the system")
	need(in.runs(PhaseReboot), "setsid", "to reboot once this session ends")
	for _, p := range []string{"sha256sum", "find", "awk", "grep"} {
		need(true, p, "the scan for key material left on the installer")
	}
	if len(lacks) > 0 {
		return fmt.Errorf("the installer %s lacks %s\nhint: boot a NixOS installer image (the minimal ISO, or nixos-images' kexec installer), whose PATH has them", in.c.Host(), strings.Join(lacks, ", "))
	}
	return nil
}

// fetchesSecrets: this install fetches the secrets input, for staging it
// or to evaluate the spec on the installer.
func (in *job) fetchesSecrets() bool {
	wanted := in.needsFetch()
	return wanted && in.lock != nil && (in.evalThere || (in.runs(PhaseStage) && !in.done(PhaseStage)))
}

// decideFetch decides who fetches the secrets input: the installer,
// through the scoped agent, when it has git (--secrets-fetch auto, the
// default, or installer); else this machine, which streams it in, and no
// agent is forwarded at all. An explicit --secrets-fetch installer on an
// installer without git is refused.
func (in *job) decideFetch(missing []string) error {
	o := in.o
	in.fetchLocal = o.SecretsFetch == FetchLocal
	switch {
	case !in.fetchesSecrets():
		return nil
	case in.fetchLocal:
		in.sum.SecretsFetch, in.sum.SecretsFetchWhy = FetchLocal, "as --secrets-fetch local asks; no agent was forwarded"
		return nil
	case !slices.Contains(missing, "git"):
		in.sum.SecretsFetch = FetchInstaller
		return nil
	}
	if o.SecretsFetch == FetchInstaller {
		return fmt.Errorf("the installer %s has no git, and --secrets-fetch installer asks it to fetch the secrets input\nhint: leave --secrets-fetch out (fleet then fetches the input here and streams it in), or boot an installer with git (the NixOS ISO has it from 24.11 on)", in.c.Host())
	}
	in.fetchLocal = true
	in.sum.SecretsFetch, in.sum.SecretsFetchWhy = FetchLocal, "the installer has no git; no agent was forwarded"
	if in.agent != nil {
		in.agent.close()
		in.agent = nil
	}
	o.Log.Warn("the installer has no git: the secrets input is fetched on this machine and streamed in; no agent is forwarded", "host", in.c.Host(), "phase", PhasePreflight)
	return nil
}

// stageTree streams the local tree dir (the secrets input at its locked
// rev) to dest on the installer, for an installer that fetched nothing.
func (in *job) stageTree(ctx context.Context, dir, dest string) error {
	if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"rm", "-rf", "--", dest}}); err != nil {
		return err
	}
	return remote.UploadTree(ctx, in.r, dir, dest, remote.TreeOptions{})
}
