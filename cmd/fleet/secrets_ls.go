package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

func init() { registerSecrets(newSecretsLsCmd) }

// secretsFlags are the flags every `fleet secrets` file command shares.
type secretsFlags struct {
	rules      string
	evaluator  string
	identities []string
}

func (f *secretsFlags) add(fs *pflag.FlagSet, withIdentity bool) {
	fs.StringVar(&f.rules, "rules", "", "rules file (default $RULES or ./secrets.nix)")
	fs.StringVar(&f.evaluator, "evaluator", "auto", "how to evaluate the rules: auto, builtin or nix")
	if withIdentity {
		fs.StringArrayVarP(&f.identities, "identity", "i", nil, "identity: SSH private key or age identity file (repeatable; default ~/.ssh/id_ed25519 and ~/.ssh/id_rsa)")
	}
}

func (f *secretsFlags) load(cmd *cobra.Command, a *app) (*secrets.Rules, error) {
	ev, err := secrets.ParseEvaluator(f.evaluator)
	if err != nil {
		return nil, usagef("--evaluator: %v", err)
	}
	path := f.rules
	if path == "" {
		path = secrets.DefaultRulesPath()
	}
	secrets.Runner = &remote.Local{Log: a.log}
	return secrets.LoadRules(cmd.Context(), path, ev)
}

func (f *secretsFlags) loadIdentities(a *app) (*secrets.Identities, error) {
	return secrets.LoadIdentities(f.identities, terminalPassphrase)
}

func newSecretsLsCmd(a *app) *cobra.Command {
	var (
		f      secretsFlags
		asJSON bool
		check  bool
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the secrets of the rules file and who each is really encrypted to",
		Long: `List every entry of the rules file with the recipients it wants and the
recipients the file is actually encrypted to, read from the file's header
without decrypting it (ssh keys by their tag; X25519 and plugin stanzas only
by count). Grease stanzas, which rage and ragenix add to every file and which
encrypt to nobody, are ignored (--json shows them with "grease": true).
Status is ok, needs-rekey, missing or unreadable; .age files no rule names
are listed as orphan. --check exits 1 unless every entry is ok.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := f.load(cmd, a)
			if err != nil {
				return err
			}
			st := secrets.Check(r)
			if asJSON {
				if err := a.printJSON(st); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "FILE\tSTATUS\tWANTED\tACTUAL")
				for _, s := range st {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.File, s.Status, len(s.Wanted), describeActual(s))
				}
				tw.Flush()
			}
			if check {
				for _, s := range st {
					if s.Status != secrets.StatusOK {
						return errSilentFail
					}
				}
			}
			return nil
		},
	}
	f.add(cmd.Flags(), false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&check, "check", false, "exit 1 unless every entry is ok")
	return cmd
}

func describeActual(s secrets.FileStatus) string {
	if !s.Exists {
		return "-"
	}
	var parts []string
	counts := map[string]int{}
	var order []string
	for _, r := range s.Actual {
		if r.Grease {
			continue // encrypts to nobody (rage adds one to every file)
		}
		r.Type, r.Tag = printableHeader(r.Type), printableHeader(r.Tag)
		if r.Tag != "" {
			name := r.Type + ":" + r.Tag
			if r.Key == "" {
				name += "(not in rule)"
			}
			parts = append(parts, name)
			continue
		}
		if counts[r.Type] == 0 {
			order = append(order, r.Type)
		}
		counts[r.Type]++
	}
	for _, t := range order {
		parts = append(parts, fmt.Sprintf("%dx%s", counts[t], t))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// printableHeader escapes what came from a file's header for the terminal: the
// header parser admits only visible ASCII in stanza lines, and this keeps
// it so whatever reaches it.
func printableHeader(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
