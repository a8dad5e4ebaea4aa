package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/nixeval"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
)

func init() { registerSecrets(newSecretsRulesCmd) }

func newSecretsRulesCmd(a *app) *cobra.Command {
	var (
		rulesPath string
		evaluator string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Evaluate and check the rules file (secrets.nix) and print it",
		Long: `Evaluate the agenix rules file (default ./secrets.nix, or $RULES) and check
every entry: it names a file inside the rules file's directory, publicKeys is
a non-empty list of unique recipients fleet can encrypt to, armor is a bool.
ls, edit and rekey refuse rules that fail these checks, naming the entry.

The built-in evaluator needs no Nix, and reads files of the rules' own
repository only (the git work tree holding the rules file, or its directory
when none does). --evaluator auto (the default) falls back to one
nix-instantiate call when the file uses something the built-in evaluator does
not support; builtin never runs Nix; nix always does.

--json prints what 'nix-instantiate --eval --strict --json FILE' prints, and
checks nothing: rules that ls would refuse are printed as Nix prints them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, err := secrets.ParseEvaluator(evaluator)
			if err != nil {
				return usagef("--evaluator: %v", err)
			}
			if rulesPath == "" {
				rulesPath = secrets.DefaultRulesPath()
			}
			secrets.Runner = &remote.Local{Log: a.log}
			if asJSON {
				raw, err := secrets.EvalRules(cmd.Context(), rulesPath, ev)
				if err != nil {
					return err
				}
				_, err = a.stdout.Write(append(nixeval.MarshalJSON(raw), '\n'))
				return err
			}
			r, err := secrets.LoadRules(cmd.Context(), rulesPath, ev)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tARMOR\tRECIPIENTS")
			for _, e := range r.Entries {
				armor := "no"
				if e.Armor {
					armor = "yes"
				}
				short := make([]string, len(e.PublicKeys))
				for i, k := range e.PublicKeys {
					short[i] = shortRecipient(k)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.File, armor, strings.Join(short, ", "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&rulesPath, "rules", "", "rules file (default $RULES or ./secrets.nix)")
	cmd.Flags().StringVar(&evaluator, "evaluator", "auto", "how to evaluate the rules: auto, builtin or nix")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the evaluated rules as Nix's JSON")
	return cmd
}

// shortRecipient abbreviates a recipient for listings:
// "ssh-ed25519 …uQraCm alice", "age1yvdxa7…f4ylqq9dkee".
func shortRecipient(k string) string {
	f := strings.Fields(k)
	if len(f) >= 2 && (strings.HasPrefix(f[0], "ssh-") || strings.Contains(f[0], "-sha2-")) {
		s := f[0] + " …" + tail(f[1], 8)
		if len(f) > 2 {
			s += " " + strings.Join(f[2:], " ")
		}
		return s
	}
	if len(k) > 24 {
		return k[:10] + "…" + tail(k, 10)
	}
	return k
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
