package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/fleetnix/fleet/secrets"
)

func init() { register(newKeysCmd) }

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and check the SSH keys secrets are encrypted to",
	}
	cmd.AddCommand(newKeysCreateCmd(a), newKeysCheckCmd(a), newKeysCopyCmd(a), newKeysEscrowCmd(a))
	return cmd
}

func newKeysCreateCmd(a *app) *cobra.Command {
	var (
		out, comment string
		passphrase   bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an OpenSSH ed25519 key to encrypt secrets to",
		Long: `Create a new OpenSSH ed25519 key: the private key at --out (mode 0600, never
overwriting an existing file) and the public key at --out.pub. Prints the
public key on stdout and, on stderr, the line to add to secrets.nix.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			var pemBlock []byte
			if passphrase {
				pass, err := newPassphrase()
				if err != nil {
					return err
				}
				b, err := ssh.MarshalPrivateKeyWithPassphrase(priv, comment, pass)
				if err != nil {
					return err
				}
				pemBlock = pemEncode(b)
			} else {
				b, err := ssh.MarshalPrivateKey(priv, comment)
				if err != nil {
					return err
				}
				pemBlock = pemEncode(b)
			}
			spub, err := ssh.NewPublicKey(pub)
			if err != nil {
				return err
			}
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
			if comment != "" {
				line += " " + comment
			}
			if err := writeNew(out, pemBlock, 0o600); err != nil {
				return err
			}
			if err := writeNew(out+".pub", []byte(line+"\n"), 0o644); err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintln(a.stdout, line)
			name := strings.TrimSuffix(filepath.Base(out), filepath.Ext(out))
			fmt.Fprintf(a.stderr, "created %s (0600) and %s.pub\nadd to secrets.nix: %s = \"%s\";\n", out, out, nixIdent(name), line)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "fleet_ed25519", "private key file to create (the public key goes to FILE.pub)")
	cmd.Flags().StringVarP(&comment, "comment", "C", "", "comment stored in the key")
	cmd.Flags().BoolVar(&passphrase, "passphrase", false, "protect the private key with a passphrase (asked on the terminal)")
	return cmd
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

// writeNew creates path with O_EXCL: it never overwrites.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; not overwriting\nhint: pick another --out or remove it yourself", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func nixIdent(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	if b.Len() == 0 {
		return "key"
	}
	return b.String()
}

// newPassphrase asks for a new passphrase twice on the terminal.
func newPassphrase() ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		return nil, errors.New("--passphrase needs a terminal to ask on\nhint: run in a terminal, or create the key without --passphrase")
	}
	defer tty.Close()
	fmt.Fprint(tty, "new passphrase: ")
	p1, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(tty, "again: ")
	p2, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, err
	}
	if len(p1) == 0 || !bytes.Equal(p1, p2) {
		return nil, errors.New("passphrases are empty or differ; no key created")
	}
	return p1, nil
}

func newKeysCheckCmd(a *app) *cobra.Command {
	var (
		f          secretsFlags
		asJSON     bool
		cf         connFlags
		remotePath string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that an identity decrypts every secret the rules give it",
		Long: `For the identity (-i, default ~/.ssh/id_ed25519 and ~/.ssh/id_rsa), list every
rules entry that names its public key and whether the file really decrypts
with it: decrypts, needs-rekey (named in the rules but the file is not
encrypted to it), missing, or fails. Exits 1 unless every entry decrypts.

With --target T --path P the identity is the key at P on the machine: its
public key is derived there (the private key is never copied back) and each
entry is encrypted-to or needs-rekey, read from the file headers. SSH login
keys are then given with --ssh-identity.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.load(cmd, a)
			if err != nil {
				return err
			}
			var ids *secrets.Identities
			remoteCheck := cf.target != ""
			if remoteCheck {
				if remotePath == "" {
					return usagef("--target needs --path: the private key's path on the machine\nhint: --path /etc/ssh/ssh_host_ed25519_key")
				}
				rec, where, err := targetRecipient(cmd.Context(), a, &cf, remotePath)
				if err != nil {
					return err
				}
				ids = &secrets.Identities{List: []*secrets.Identity{{File: where, Recipient: rec}}}
			} else if ids, err = f.loadIdentities(a); err != nil {
				return err
			}
			res := secrets.CheckIdentities(r, ids, remoteCheck)
			if asJSON {
				if res == nil {
					res = []secrets.KeyCheck{}
				}
				if err := a.printJSON(res); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "FILE\tSTATUS\tIDENTITY")
				for _, c := range res {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", c.File, c.Status, c.Identity)
				}
				tw.Flush()
			}
			if len(res) == 0 {
				fmt.Fprintln(a.stderr, "error: no rules entry names the identity's public key\nhint: add it to publicKeys in the rules file, then run 'fleet secrets rekey'")
				return errSilentFail
			}
			for _, c := range res {
				if !c.OK() {
					return errSilentFail
				}
			}
			return nil
		},
	}
	f.add(cmd.Flags(), true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	tmp := pflag.NewFlagSet("conn", pflag.ContinueOnError)
	addConnFlagsForKeys(tmp, &cf)
	cmd.Flags().AddFlagSet(tmp)
	cmd.Flags().StringVar(&remotePath, "path", "", "with --target: the private key's path on the machine (its public key is derived there)")
	return cmd
}
