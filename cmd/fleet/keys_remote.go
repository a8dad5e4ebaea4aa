package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/remote"
)

// addConnFlagsForKeys registers the connection flags, except that -i
// belongs to the key being copied or checked: SSH authentication keys are
// given with --ssh-identity instead.
func addConnFlagsForKeys(fs *pflag.FlagSet, cf *connFlags) {
	tmp := pflag.NewFlagSet("conn", pflag.ContinueOnError)
	cf.add(tmp)
	tmp.VisitAll(func(f *pflag.Flag) {
		if f.Name == "identity" {
			return
		}
		fs.AddFlag(f)
	})
	fs.StringArrayVar(&cf.identities, "ssh-identity", nil, "private key file to log in to the target with (repeatable; the ssh-agent is used too)")
}

// remotePublicKey derives the public key of the private key at path on the
// machine (ssh-keygen -y): the private key never leaves it.
func remotePublicKey(ctx context.Context, r remote.Runner, path string) (ssh.PublicKey, error) {
	res, err := r.Run(ctx, remote.Cmd{Args: []string{"ssh-keygen", "-y", "-P", "", "-f", path}, Quiet: true})
	if err != nil {
		return nil, fmt.Errorf("derive the public key of %s on %s: %w\nhint: the key must exist, be unencrypted, and ssh-keygen be installed there", path, r.Host(), err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(res.Stdout)
	if err != nil {
		return nil, fmt.Errorf("public key of %s on %s: %w", path, r.Host(), err)
	}
	return pk, nil
}

func newKeysCopyCmd(a *app) *cobra.Command {
	var (
		cf  connFlags
		key string
		to  string
	)
	cmd := &cobra.Command{
		Use:   "copy --target T -i KEY --to PATH",
		Short: "Copy a private key to a machine (0600, owner root) and verify it there",
		Long: `Stream the private key KEY (default ~/.ssh/id_ed25519) to PATH on the target:
written atomically beside PATH (never a temp file elsewhere), mode 0600,
owner root, missing parent directories created 0700. Then derive the public
key on the target and compare it with the local one. SSH login keys are
given with --ssh-identity (-i is the key being copied).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" || !filepath.IsAbs(to) {
				return usagef("--to must be an absolute path on the target\nhint: --to /etc/ssh/ssh_host_ed25519_key or --to /var/lib/agenix/key")
			}
			if key == "" {
				if d := defaultKey(); d != "" {
					key = d
				} else {
					return usagef("-i KEY is required (no ~/.ssh/id_ed25519)")
				}
			}
			pem, err := os.ReadFile(key)
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			defer clear(pem)
			raw, err := ssh.ParseRawPrivateKey(pem)
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return fmt.Errorf("%s is passphrase-protected; a machine cannot decrypt its secrets at boot with it\nhint: copy an unencrypted key (fleet keys create without --passphrase)", key)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			signer, err := ssh.NewSignerFromKey(raw)
			if err != nil {
				return err
			}
			want := signer.PublicKey()
			c, err := cf.dial(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := remote.Upload(cmd.Context(), c, bytes.NewReader(pem), int64(len(pem)), to, remote.UploadOptions{Mode: 0o600, Owner: "0:0", MkdirParents: true}); err != nil {
				return err
			}
			got, err := remotePublicKey(cmd.Context(), c, to)
			if err != nil {
				return err
			}
			if !bytes.Equal(got.Marshal(), want.Marshal()) {
				return fmt.Errorf("%s on %s does not match %s after the copy\nhint: something else rewrote the file; check the target", to, c.Host(), key)
			}
			a.log.Info("key copied and verified", "host", c.Host(), "path", to, "key", ssh.FingerprintSHA256(want))
			return nil
		},
	}
	addConnFlagsForKeys(cmd.Flags(), &cf)
	cmd.Flags().StringVarP(&key, "identity", "i", "", "private key to copy (default ~/.ssh/id_ed25519)")
	cmd.Flags().StringVar(&to, "to", "", "absolute path on the target")
	return cmd
}

func defaultKey() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	p := filepath.Join(home, ".ssh", "id_ed25519")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// targetRecipient derives the public key at --path on --target, as a
// secrets.nix recipient line.
func targetRecipient(ctx context.Context, a *app, cf *connFlags, path string) (string, string, error) {
	c, err := cf.dial(ctx, a)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	pk, err := remotePublicKey(ctx, c, path)
	if err != nil {
		return "", "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))), c.Host() + ":" + path, nil
}
