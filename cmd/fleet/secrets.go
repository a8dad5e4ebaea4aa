package main

import "github.com/spf13/cobra"

// secretsSubcommands are the constructors of `fleet secrets` subcommands;
// each subcommand file adds its own in an init function.
var secretsSubcommands []func(*app) *cobra.Command

func registerSecrets(f func(*app) *cobra.Command) { secretsSubcommands = append(secretsSubcommands, f) }

func init() { register(newSecretsCmd) }

func newSecretsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "agenix-compatible secrets: rules, ls, edit, decrypt, rekey",
	}
	for _, f := range secretsSubcommands {
		cmd.AddCommand(f(a))
	}
	return cmd
}
