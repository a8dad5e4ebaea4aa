package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/secrets"
)

func init() { registerSecrets(newSecretsRekeyCmd) }

func newSecretsRekeyCmd(a *app) *cobra.Command {
	var (
		f        secretsFlags
		all      bool
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "rekey [FILE...]",
		Short: "Re-encrypt secrets to the recipients of the rules file",
		Long: `Re-encrypt the rules' files (or only FILE...) to their recipients. By default
only files whose header differs from the rule are touched (ssh recipients by
tag, X25519 and plugin stanzas by count, armor); --all re-encrypts every file.
Files are processed in parallel, each written atomically: an interrupted
rekey leaves every file either old or new, and the next one removes the temp
files a killed run left. While it runs, the secrets directory is locked
against other rekeys and edits. A failure on one file does not
stop the others; all failures are reported at the end and the exit code is 1.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.load(cmd, a)
			if err != nil {
				return err
			}
			ids, err := f.loadIdentities(a)
			if err != nil {
				return err
			}
			res, err := secrets.Rekey(cmd.Context(), r, ids, secrets.RekeyOptions{
				Files: args, All: all, Parallel: parallel,
				Done: func(file, outcome string) { a.log.Debug("rekey", "file", file, "outcome", outcome) },
			})
			if errors.Is(err, secrets.ErrLocked) {
				return err
			}
			for _, s := range res.Swept {
				a.log.Info("removed a temp file an interrupted run left (ciphertext)", "file", s)
			}
			for _, m := range res.Missing {
				a.log.Warn("no such file, skipped", "file", m)
			}
			fmt.Fprintf(a.stderr, "rekeyed %d, unchanged %d, missing %d\n", len(res.Rekeyed), len(res.Unchanged), len(res.Missing))
			if err != nil {
				var me *multierror.Error
				if errors.As(err, &me) {
					fmt.Fprintf(a.stderr, "error: %d file(s) failed:\n", len(me.Errors))
					for _, e := range me.Errors {
						fmt.Fprintf(a.stderr, "  %v\n", e)
					}
					fmt.Fprintln(a.stderr, "hint: files not listed were written completely; fix the cause and run rekey again")
					return errSilentFail
				}
				return err
			}
			return nil
		},
	}
	f.add(cmd.Flags(), true)
	cmd.Flags().BoolVar(&all, "all", false, "re-encrypt every file, even those already encrypted to the rule's recipients")
	cmd.Flags().IntVarP(&parallel, "jobs", "j", 0, "files at once (default: number of CPUs)")
	return cmd
}
