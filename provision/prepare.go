package provision

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/remote"
)

// prepare derives, before anything is dialed, what the options leave to
// Install: the host's spec (unless the installer evaluates it, in
// preflight), the flake's lock, the scoped agent, and what depends on the
// spec.
func (in *job) prepare(ctx context.Context) error {
	o := &in.o
	var err error
	in.evalThere = o.evalThere()
	switch {
	case o.Spec != nil:
		// Install completes the spec (where each file is, defaults): on a
		// copy, so the caller's spec is never changed under it.
		o.Spec = o.Spec.Clone()
		if err := o.Spec.Validate(); err != nil {
			return err
		}
		if err := resolveSources(ctx, o.LocalRunner, o.Spec, o.Host.FlakeDir, o.Host.SecretsInput); err != nil {
			return err
		}
	case in.evalThere:
		// The rest of the spec comes from the installer's evaluation.
		o.Spec = &Spec{Name: o.Host.Name, SecretsInput: o.Host.SecretsInput}
		in.specPending = true
	default:
		if o.Spec, err = o.Host.Load(ctx, o.LocalRunner); err != nil {
			return err
		}
		in.specEvaluated = o.Host.SpecFile == ""
	}
	if in.lock, err = o.Host.readLock(o.Spec, in.evalThere && o.Host.SecretsInput != SelfInput); err != nil {
		return err
	}
	if in.evalThere && o.Spec.SecretsInput == "" && in.lock != nil {
		// Which input to fetch before evaluating: the one named secrets,
		// if the flake has it (else --secrets-input says).
		o.Spec.SecretsInput = SelfInput
		if _, err := in.lock.Input(DefaultSecretsInput); err == nil {
			o.Spec.SecretsInput = DefaultSecretsInput
		}
	}
	// The agent first: it is quick to refuse, and decrypting may clone.
	if err := in.openAgent(); err != nil {
		return err
	}
	if in.evalThere {
		return nil // preflight completes the spec once it is evaluated
	}
	return in.completeSpec(ctx)
}

// completeSpec derives what depends on the host's spec: the local
// decryption of every declared secret (preflight proves the identity
// decrypts them all, verify compares the host's files with it) and the
// disk layout.
func (in *job) completeSpec(ctx context.Context) error {
	o := &in.o
	var err error
	if o.IdentityAge != "" && in.escrowed == nil {
		if err := in.restoreIdentity(ctx); err != nil {
			return err
		}
		in.sum.Identity = o.IdentityAge + " (escrowed), " + in.escrowed.Fingerprint()
	}
	if o.Decrypted == nil {
		if o.Decrypted, err = DecryptSecrets(ctx, o.LocalRunner, o.Spec, in.lock, o.Identity, o.Host); err != nil {
			return err
		}
	}
	if o.Disks == nil && o.Spec.hasDisko() {
		if o.Disks, err = newDiskoLayout(o.Spec, o.DiskOptions, o.Log); err != nil {
			return err
		}
	}
	if o.Disks == nil && len(o.DiskOptions.Keep) > 0 {
		return badOption("--keep %s: host %s has no disko layout", strings.Join(o.DiskOptions.Keep, ","), o.Spec.Name)
	}
	return nil
}

// openAgent opens the scoped agent when the installer may fetch the
// secrets over SSH (preflight closes it unused when the installer has no
// git: see decideFetch): before anything is dialed, so a missing key or agent
// is said first. Its allowlist is the --forward-key keys, else the
// IdentityFile that ssh_config gives the secrets server; with neither,
// nothing would be forwarded and the install is refused.
func (in *job) openAgent() error {
	o := &in.o
	if o.SecretsFetch == FetchLocal || !in.needsFetch() {
		return nil
	}
	url := in.secretsURL()
	host, port := gitHostPort(url)
	if host == "" {
		return nil // not ssh: no agent to forward
	}
	if o.Forward.Disabled {
		return badOption("--no-forward-agent leaves the installer no way to fetch the secrets\nhint: add --secrets-fetch local")
	}
	t := remote.Target{Host: host}
	t.Port, _ = strconv.Atoi(port)
	ep, err := remote.Resolve(t, o.Dial.SSHConfig)
	if err != nil {
		return err
	}
	cfg, err := o.Forward.Config(host, ep.IdentityFiles)
	if errors.Is(err, agentfwd.ErrNoAllowlist) {
		return err
	}
	if err != nil {
		return &OptionError{err}
	}
	if o.DryRun {
		return nil // the allowlist is known; nothing is forwarded
	}
	cfg.Log = o.Log
	ag, conn, err := agentfwd.Open(o.Forward.Socket, cfg)
	if err != nil {
		return err
	}
	in.agent = &scopedAgent{ag: ag, conn: conn}
	return nil
}

// secretsURL is the URL the secrets input is fetched from, or "".
func (in *job) secretsURL() string {
	if in.lock == nil {
		return ""
	}
	sin, err := in.lock.Input(in.o.Spec.SecretsInput)
	if err != nil {
		return ""
	}
	return sin.Locked.CloneURL()
}
