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
// written by fleet keys escrow) from where the host's .age files are (see
// escrowPlace), decrypts it in memory with the operator's identities, and
// proves it is the host's before anything is dialed: the rules list it for
// every secret the host declares, and it decrypts each of them. It sets
// the local decryption's hashes (o.Decrypted). The identity's bytes stay
// in memory (in.escrowed) until the install ends; no local file, not even
// on tmpfs, ever holds them.
func (in *job) restoreIdentity(ctx context.Context) error {
	o := &in.o
	entry := o.IdentityAge
	files, err := OpenSecretFiles(ctx, o.LocalRunner, o.Spec, in.lock, o.Host.FlakeDir, o.Host.SecretsDir)
	if err != nil {
		return fmt.Errorf("--host-identity-age %s: %w", entry, err)
	}
	defer files.Close()
	pl, err := in.escrowPlace(ctx, files)
	if err != nil {
		return err
	}
	ops, err := secrets.LoadIdentities(o.OperatorIdentities, o.OperatorPassphrase)
	if err != nil {
		return fmt.Errorf("the operator identity to decrypt %s: %w", entry, err)
	}
	key, err := secrets.Decrypt(pl.ct, ops)
	if errors.Is(err, secrets.ErrCannotDecrypt) {
		var names []string
		for _, id := range ops.List {
			names = append(names, id.File)
		}
		return fmt.Errorf("the escrowed identity %s is encrypted to none of the operator identities (%s): %w\nhint: pass --operator-identity with a key its entry in %s names", entry, strings.Join(names, ", "), secrets.ErrCannotDecrypt, pl.rulesName)
	}
	if err != nil {
		return fmt.Errorf("decrypt the escrowed identity %s: %w", entry, err)
	}
	k, err := secrets.ParseHostKey(entry+" (escrowed)", key)
	if err != nil {
		clear(key)
		return err
	}
	if err := in.provesHost(ctx, files, pl, k); err != nil {
		clear(key)
		return err
	}
	in.escrowed = k
	o.Log.Info("host identity restored from its escrow", "host", o.Spec.Name, "file", entry, "identity", k.Fingerprint())
	return nil
}

// escrowPlace is where a host's escrow is, with the rules file that
// names it: beside the host's .age files, in the input that holds them
// (its root's secrets.nix), or in the flake itself (the nearest
// secrets.nix above the escrow).
type escrowPlace struct {
	ct        []byte // the escrow's ciphertext
	rules     *secrets.Rules
	rulesName string // the rules file, for messages
	// dir is the rules file's directory, as the .age files' paths
	// start: "" for an input's root.
	dir string
}

// entry is the rules entry of the .age file at file.
func (p *escrowPlace) entry(file string) string {
	if p.dir == "" {
		return file
	}
	if rel, err := filepath.Rel(p.dir, file); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return file
}

// escrowPlace reads Options.IdentityAge and its rules: from the input
// holding the host's .age files, at its locked rev; or from the flake's
// directory when they are the flake's own.
func (in *job) escrowPlace(ctx context.Context, files *SecretFiles) (*escrowPlace, error) {
	o := &in.o
	entry := o.IdentityAge
	if files.Input != nil {
		ct, err := files.Input.Read(ctx, o.LocalRunner, entry)
		if err != nil {
			return nil, fmt.Errorf("the escrowed identity %s is not in the input %s at its locked rev %s: %w\nhint: fleet keys escrow %s writes it; commit and push it, then update the lock (nix flake update %s)",
				entry, o.Spec.SecretsInput, shortRev(files.Input.rev), err, o.Spec.Name, o.Spec.SecretsInput)
		}
		rules, err := files.Input.Rules(ctx, o.LocalRunner)
		if err != nil {
			return nil, err
		}
		return &escrowPlace{ct: ct, rules: rules, rulesName: RulesFile + " of the input " + o.Spec.SecretsInput}, nil
	}
	ct, err := files.Read(ctx, o.LocalRunner, Secret{Input: SelfInput, File: entry})
	if err != nil {
		return nil, fmt.Errorf("the escrowed identity %s is not in the flake: %w\nhint: host %s's .age files are the flake's own, so its escrow is too: fleet keys escrow %s --rules DIR/%s writes it beside them; give its path in the flake", entry, err, o.Spec.Name, o.Spec.Name, RulesFile)
	}
	for dir := filepath.Dir(filepath.Clean(entry)); ; dir = filepath.Dir(dir) {
		p := filepath.Join(o.Host.FlakeDir, dir, RulesFile)
		if _, err := os.Lstat(p); err == nil {
			rules, err := secrets.LoadRules(ctx, p, secrets.EvalAuto)
			if err != nil {
				return nil, err
			}
			return &escrowPlace{ct: ct, rules: rules, rulesName: filepath.Join(dir, RulesFile), dir: dir}, nil
		}
		if dir == "." {
			return nil, fmt.Errorf("the escrowed identity %s: no %s above it in the flake says who it and the host's secrets are for\nhint: keep the escrow under the directory of the rules file that lists the host's .age files", entry, RulesFile)
		}
	}
}

// provesHost checks that k is the host's decryption identity: the rules
// list it for each secret the host declares, and it decrypts each one (at
// the locked rev). On failure it names the secrets and says how to rekey.
func (in *job) provesHost(ctx context.Context, files *SecretFiles, pl *escrowPlace, k *secrets.HostKey) error {
	o := &in.o
	var entries []string
	byEntry := map[string]string{}
	for _, n := range o.Spec.SecretNames() {
		e := pl.entry(o.Spec.Secrets[n].File)
		entries = append(entries, e)
		byEntry[e] = n
	}
	missing, notListed := secrets.HostRecipientOf(pl.rules, k, entries)
	why := map[string][]string{} // secret -> what is wrong
	for _, e := range missing {
		why[byEntry[e]] = append(why[byEntry[e]], pl.rulesName+" has no entry for it")
	}
	for _, e := range notListed {
		why[byEntry[e]] = append(why[byEntry[e]], pl.rulesName+" does not list this key for it")
	}
	decrypted, failed := DecryptAll(ctx, o.LocalRunner, o.Spec, files, k.IDs)
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
			o.IdentityAge, k.Fingerprint(), o.Spec.Name, strings.Join(problems, "\n  "), o.Spec.Name, k.Recipient, pl.rulesName, o.Spec.Name, o.Spec.Name)
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
