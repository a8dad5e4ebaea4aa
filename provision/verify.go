package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// VerifyOptions are one `fleet verify`: the host, the identities that
// decrypt its secrets (locally, to know what each must hold: any that
// decrypts a file will do), and where it runs.
type VerifyOptions struct {
	Host       HostSource
	Identities []string
	Passphrase secrets.PassphraseFunc // for an encrypted identity; nil: refuse it
	Target     remote.Target
	Dial       remote.Options
	Log        *log.Logger
}

// VerifyHost checks a running host against its spec (see [Verify]), with
// the sha256s of the local decryption of every declared secret.
func VerifyHost(ctx context.Context, o VerifyOptions) (*Report, error) {
	if len(o.Identities) == 0 {
		return nil, badOption("--host-identity is required to know what each secret should contain")
	}
	local := &remote.Local{Log: o.Log}
	spec, err := o.Host.Load(ctx, local)
	if err != nil {
		return nil, err
	}
	lock, err := o.Host.readLock(spec, false)
	if err != nil {
		return nil, err
	}
	want := map[string]string{}
	if len(spec.Secrets) > 0 {
		ids, err := secrets.LoadIdentities(o.Identities, o.Passphrase)
		if err != nil {
			return nil, err
		}
		files, err := OpenSecretFiles(ctx, local, spec, lock, o.Host.FlakeDir, o.Host.SecretsDir)
		if err != nil {
			return nil, err
		}
		defer files.Close()
		var failed []string
		if want, failed = DecryptAll(ctx, local, spec, files, ids); len(failed) > 0 {
			return nil, cannotDecrypt(strings.Join(o.Identities, ", "), spec.Name, failed)
		}
	}
	c, err := remote.Dial(ctx, o.Target, o.Dial)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return Verify(remote.WithPhase(ctx, PhaseVerify), c, spec, want)
}

// verify checks the first boot: every declared secret decrypted.
func (in *job) verify(ctx context.Context) error {
	if in.o.DryRun {
		in.listed("check %d secrets under %s and %d identities", len(in.o.Spec.Secrets), orDefault(in.o.Spec.SecretsDir, DefaultSecretsDir), len(in.o.Spec.IdentityPaths))
		return nil
	}
	rep, err := Verify(ctx, in.c, in.o.Spec, in.o.Decrypted)
	if err != nil {
		return err
	}
	in.sum.Verify = rep
	if !rep.OK {
		return rep.problem()
	}
	return nil
}

// problem says what the first boot got wrong.
func (rep *Report) problem() error {
	var what []string
	bad := 0
	for _, s := range rep.Secrets {
		if !s.OK {
			bad++
		}
	}
	if bad > 0 {
		what = append(what, fmt.Sprintf("%d of %d secrets did not decrypt as declared on first boot", bad, len(rep.Secrets)))
	}
	for _, i := range rep.Identities {
		if !i.OK {
			what = append(what, fmt.Sprintf("identity %s: %s", i.Path, strings.Join(i.Problems, "; ")))
		}
	}
	if c := rep.Initrd; c != nil && !c.OK {
		what = append(what, fmt.Sprintf("the root %s is on %s, driven by %s, but the configuration's boot.initrd.availableKernelModules lacks %s: an initrd built from it cannot find the root\nhint: generate the host's hardware configuration (fleet install --generate-hardware-config nixos-generate-config PATH) or add them to boot.initrd.availableKernelModules",
			c.Root, strings.Join(c.Disks, ", "), strings.Join(c.Modules, ", "), strings.Join(c.Missing, ", ")))
	}
	if len(what) == 0 {
		return errors.New("the first boot is not as declared")
	}
	return errors.New(strings.Join(what, "\n"))
}
