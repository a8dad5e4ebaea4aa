package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetnix/fleet/secrets"
)

func init() { registerSecrets(newSecretsDecryptCmd) }

func newSecretsDecryptCmd(a *app) *cobra.Command {
	var (
		f   secretsFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "decrypt FILE",
		Short: "Decrypt a secret to stdout or to a file (-o, created 0600)",
		Long: `Decrypt FILE (relative to the rules file, or a path) with the identities and
write the plaintext to stdout, or with -o to OUT (mode 0600, created only
once decryption succeeded). Binary plaintext is not written to a terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := secretPath(cmd, a, &f, args[0])
			if err != nil {
				return err
			}
			ids, err := f.loadIdentities(a)
			if err != nil {
				return err
			}
			pt, err := secrets.DecryptFile(path, ids)
			if err != nil {
				return fmt.Errorf("decrypt %s: %w", args[0], err)
			}
			defer clear(pt)
			if out == "" || out == "-" {
				if fd, ok := a.stdout.(*os.File); ok && term.IsTerminal(int(fd.Fd())) && isBinary(pt) {
					return fmt.Errorf("refusing to write binary plaintext to a terminal\nhint: use -o FILE or redirect stdout")
				}
				_, err := a.stdout.Write(pt)
				return err
			}
			if abs, _ := filepath.Abs(out); abs == path {
				return usagef("-o %s is the encrypted file itself\nhint: pick another output file", out)
			}
			fo, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("write plaintext: %w\nhint: -o never overwrites; remove the file first", err)
			}
			if _, err := fo.Write(pt); err != nil {
				fo.Close()
				os.Remove(out)
				return err
			}
			return fo.Close()
		},
	}
	f.add(cmd.Flags(), true)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the plaintext to this new file (0600) instead of stdout")
	return cmd
}

func isBinary(b []byte) bool {
	if len(b) > 8192 {
		b = b[:8192]
	}
	return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b)
}

// secretPath resolves FILE: the rules entry it names when a rules file
// exists (--rules, $RULES or ./secrets.nix), else a plain path.
func secretPath(cmd *cobra.Command, a *app, f *secretsFlags, file string) (string, error) {
	rulesPath := f.rules
	if rulesPath == "" {
		rulesPath = secrets.DefaultRulesPath()
	}
	if _, err := os.Stat(rulesPath); err == nil || f.rules != "" {
		r, err := f.load(cmd, a)
		if err != nil {
			return "", err
		}
		if e, ok := r.Lookup(file); ok {
			p, err := r.FilePath(e)
			if err != nil {
				return "", fmt.Errorf("%s: %w", e.File, err)
			}
			return p, nil
		}
	}
	return filepath.Abs(file)
}
