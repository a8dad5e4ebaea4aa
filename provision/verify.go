package provision

import (
	"context"
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
		bad := 0
		for _, s := range rep.Secrets {
			if !s.OK {
				bad++
			}
		}
		return fmt.Errorf("%d of %d secrets did not decrypt as declared on first boot", bad, len(rep.Secrets))
	}
	return nil
}
