package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

// maxHostKey bounds a host identity read from a machine: an RSA 16384
// key is under 13 KiB.
const maxHostKey = 64 << 10

// hostNameRE is a host name as nixosConfigurations has it.
var hostNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// escrowResult is what `keys escrow --json` prints.
type escrowResult struct {
	Host       string   `json:"host"`
	File       string   `json:"file"`
	Identity   string   `json:"identity"`
	Recipients []string `json:"recipients"`
}

func newKeysEscrowCmd(a *app) *cobra.Command {
	var (
		f          secretsFlags
		cf         connFlags
		from, path string
		entry      string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "escrow HOST (--target T [--path P] | --from FILE)",
		Short: "Keep a host's decryption identity, encrypted to the operators, beside its secrets",
		Long: `Take HOST's decryption identity (the private key its secrets are encrypted to:
read over SSH from --path on --target, default /etc/ssh/ssh_host_ed25519_key, or
from the local --from FILE) and write it age-encrypted to the rules entry
hosts/HOST/host-key.age (--entry), to that entry's recipients only: the
operators. The entry must exist in the rules file and must not list the host's
own key; when it is missing, the line to add is printed.

After a disk failure, 'fleet install HOST --host-identity-age hosts/HOST/host-key.age'
decrypts it in memory with the operator's identity and gives the new system the
same identity, so every secret still decrypts without a rekey. The private key
is never written here in the clear. Commit the file to the secrets repository
and update the flake's lock.`,
		Example: `  fleet keys escrow nas --target root@nas
  fleet keys escrow nas --from ~/keys/nas_host_ed25519 --rules ~/src/secrets/secrets.nix`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := args[0]
			if !hostNameRE.MatchString(host) {
				return usagef("host %q: want a nixosConfigurations name (letters, digits, _ . -)", host)
			}
			if (from == "") == (cf.target == "") {
				return usagef("give exactly one of --target (read the key on the host) and --from FILE")
			}
			if entry == "" {
				entry = secrets.EscrowFile(host)
			}
			if !filepath.IsLocal(entry) || !strings.HasSuffix(entry, ".age") {
				return usagef("--entry %q: want a .age path inside the secrets directory", entry)
			}
			r, err := f.load(cmd, a)
			if err != nil {
				return err
			}
			var key []byte
			name := from
			if from != "" {
				if key, err = os.ReadFile(from); err != nil {
					return err
				}
			} else {
				if !filepath.IsAbs(path) {
					return usagef("--path %q: want an absolute path on the host", path)
				}
				c, err := cf.dial(cmd.Context(), a)
				if err != nil {
					return err
				}
				defer c.Close()
				res, err := c.Run(cmd.Context(), remote.Cmd{Args: []string{"cat", "--", path}, Quiet: true, MaxStdout: maxHostKey})
				if err != nil {
					return fmt.Errorf("read %s on %s: %w", path, c.Host(), err)
				}
				key, name = res.Stdout, c.Host()+":"+path
			}
			defer clear(key)
			k, err := secrets.ParseHostKey(name, key)
			if err != nil {
				return err
			}
			recipients, err := secrets.EscrowRecipients(r, entry, host, k)
			if err != nil {
				return err
			}
			unlock, err := secrets.Lock(r.Dir)
			if err != nil {
				return err
			}
			defer unlock()
			rule, _ := r.Lookup(entry)
			ct, err := secrets.Encrypt(key, recipients, rule.Armor)
			if err != nil {
				return fmt.Errorf("encrypt %s: %w; nothing written", rule.File, err)
			}
			dest := filepath.Join(r.Dir, rule.File)
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return err
			}
			if err := secrets.WriteFileAtomic(dest, ct, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", rule.File, err)
			}
			if st := secrets.CheckEntry(r, rule); st.Status != secrets.StatusOK {
				return fmt.Errorf("%s after writing: %s", rule.File, st.Status)
			}
			a.log.Info("identity escrowed", "host", host, "file", rule.File, "identity", k.Fingerprint(), "recipients", len(recipients))
			fmt.Fprintf(a.stderr, "escrowed %s's identity (%s) in %s, encrypted to %d operator recipient(s)\nnext: commit it beside the secrets it unlocks (their repository, or the flake) and, for a repository, update the flake's lock of that input (nix flake update INPUT)\n",
				host, k.Fingerprint(), rule.File, len(recipients))
			if asJSON {
				return a.printJSON(escrowResult{Host: host, File: rule.File, Identity: k.Recipient, Recipients: recipients})
			}
			return nil
		},
	}
	f.add(cmd.Flags(), false)
	tmp := pflag.NewFlagSet("conn", pflag.ContinueOnError)
	addConnFlagsForKeys(tmp, &cf)
	cmd.Flags().AddFlagSet(tmp)
	cmd.Flags().StringVar(&from, "from", "", "the host's private key, a local file (instead of --target)")
	cmd.Flags().StringVar(&path, "path", "/etc/ssh/ssh_host_ed25519_key", "with --target: the host's decryption identity on it")
	cmd.Flags().StringVar(&entry, "entry", "", "the rules entry to write (default hosts/HOST/host-key.age)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was escrowed as JSON")
	return cmd
}
