package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// RulesFile is the secrets repository's rules file, at its root: who each
// secret is for (agenix's secrets.nix).
const RulesFile = "secrets.nix"

// restoreIdentity reads the host's escrowed identity (Options.IdentityAge,
// written by fleet keys escrow) from the secrets input at its locked rev,
// decrypts it in memory with the operator's identities, and proves it is
// the host's before anything is dialed: the rules list it for every
// secret the host declares, and it decrypts each of them. It sets the
// local decryption's hashes (o.Decrypted). The identity's bytes stay in
// memory (in.escrowed) until the install ends; no local file, not even
// on tmpfs, ever holds them.
func (in *job) restoreIdentity(ctx context.Context) error {
	o := &in.o
	entry := o.IdentityAge
	if in.lock == nil {
		return fmt.Errorf("--host-identity-age %s: the flake has no lock to find the secrets input in\nhint: nix flake lock", entry)
	}
	sin, err := in.lock.Input(o.Spec.SecretsInput)
	if err != nil {
		return err
	}
	src, err := OpenSecrets(ctx, o.LocalRunner, sin, o.Host.SecretsDir)
	if err != nil {
		return err
	}
	defer src.Close()
	ct, err := src.Read(ctx, o.LocalRunner, entry)
	if err != nil {
		return fmt.Errorf("the escrowed identity %s is not in the secrets input at its locked rev %s: %w\nhint: fleet keys escrow %s writes it; commit and push it, then update the lock (nix flake update %s)",
			entry, shortRev(sin.Locked.Rev), err, o.Spec.Name, o.Spec.SecretsInput)
	}
	ops, err := secrets.LoadIdentities(o.OperatorIdentities, o.OperatorPassphrase)
	if err != nil {
		return fmt.Errorf("the operator identity to decrypt %s: %w", entry, err)
	}
	key, err := secrets.Decrypt(ct, ops)
	if errors.Is(err, secrets.ErrCannotDecrypt) {
		var files []string
		for _, id := range ops.List {
			files = append(files, id.File)
		}
		return fmt.Errorf("the escrowed identity %s is encrypted to none of the operator identities (%s): %w\nhint: pass --operator-identity with a key its entry in %s names", entry, strings.Join(files, ", "), secrets.ErrCannotDecrypt, RulesFile)
	}
	if err != nil {
		return fmt.Errorf("decrypt the escrowed identity %s: %w", entry, err)
	}
	k, err := secrets.ParseHostKey(entry+" (escrowed)", key)
	if err != nil {
		clear(key)
		return err
	}
	rules, err := src.Rules(ctx, o.LocalRunner)
	if err != nil {
		clear(key)
		return err
	}
	if err := in.provesHost(ctx, src, rules, k); err != nil {
		clear(key)
		return err
	}
	in.escrowed = k
	o.Log.Info("host identity restored from its escrow", "host", o.Spec.Name, "file", entry, "identity", k.Fingerprint())
	return nil
}

// provesHost checks that k is the host's decryption identity: the rules
// list it for each secret the host declares, and it decrypts each one (at
// the locked rev). On failure it names the secrets and says how to rekey.
func (in *job) provesHost(ctx context.Context, src *SecretsSource, rules *secrets.Rules, k *secrets.HostKey) error {
	o := &in.o
	var files []string
	byFile := map[string]string{}
	for _, n := range o.Spec.SecretNames() {
		f := o.Spec.Secrets[n].File
		files = append(files, f)
		byFile[f] = n
	}
	missing, notListed := secrets.HostRecipientOf(rules, k, files)
	why := map[string][]string{} // secret -> what is wrong
	for _, f := range missing {
		why[byFile[f]] = append(why[byFile[f]], RulesFile+" has no entry for it")
	}
	for _, f := range notListed {
		why[byFile[f]] = append(why[byFile[f]], RulesFile+" does not list this key for it")
	}
	decrypted, failed := DecryptAll(ctx, o.LocalRunner, o.Spec, src, k.IDs)
	for _, l := range failed {
		for _, n := range o.Spec.SecretNames() {
			for _, prefix := range []string{n + " (" + o.Spec.Secrets[n].File + "): ", n + ": "} {
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					why[n] = append(why[n], rest)
				}
			}
		}
	}
	var problems []string
	for _, n := range o.Spec.SecretNames() {
		if len(why[n]) > 0 {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", n, o.Spec.Secrets[n].File, strings.Join(why[n], "; ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the escrowed identity %s (%s) is not the recipient of %s's secrets:\n  %s\nhint: if it is %s's key, add %q to those entries' publicKeys in %s and run fleet secrets rekey, then commit and update the lock; if it is not, escrow %s's own key again (fleet keys escrow %s --target ...)",
			o.IdentityAge, k.Fingerprint(), o.Spec.Name, strings.Join(problems, "\n  "), o.Spec.Name, k.Recipient, RulesFile, o.Spec.Name, o.Spec.Name)
	}
	o.Decrypted = decrypted
	return nil
}

// Rules evaluates the secrets repository's rules file at the locked rev,
// from a copy of that rev's tree (ciphertext and public keys only) in a
// temporary directory, removed before it returns.
func (s *SecretsSource) Rules(ctx context.Context, r remote.Runner) (*secrets.Rules, error) {
	if _, err := s.Read(ctx, r, RulesFile); err != nil {
		return nil, fmt.Errorf("the secrets input has no %s at its locked rev %s: fleet reads from it who each secret is for: %w", RulesFile, shortRev(s.rev), err)
	}
	tmp, err := os.MkdirTemp("", "fleet-rules-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	tree, err := r.Run(ctx, remote.Cmd{Args: []string{"git", "-C", s.dir, "archive", "--format=tar", "--end-of-options", s.rev}, MaxStdout: maxCiphertext})
	if err != nil {
		return nil, fmt.Errorf("read the secrets input at %s: %w", shortRev(s.rev), err)
	}
	if _, err := r.Run(ctx, remote.Cmd{Args: []string{"tar", "-x", "-f", "-", "-C", tmp}, Stdin: bytes.NewReader(tree.Stdout)}); err != nil {
		return nil, fmt.Errorf("unpack the secrets input at %s: %w", shortRev(s.rev), err)
	}
	rules, err := secrets.LoadRules(ctx, filepath.Join(tmp, RulesFile), secrets.EvalAuto)
	if err != nil {
		var re *secrets.RulesError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s at %s: %w", RulesFile, shortRev(s.rev), err)
		}
		return nil, err
	}
	return rules, nil
}
