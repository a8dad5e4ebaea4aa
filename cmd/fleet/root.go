package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/charmbracelet/log"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetnix/fleet/provision"
)

// Exit codes. Every command ends in one of these.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error as the user's call being wrong (bad flag, bad
// target): the process exits with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error (exit code 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an explicit exit code and an optional message already
// printed (quiet) or still to print.
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// errSilentFail ends the command with exit 1 without printing anything more:
// the command already said what went wrong (a failed check table, say).
var errSilentFail = exitError{code: exitFail, quiet: true}

// printJSON writes v to stdout as indented JSON: what every --json prints.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// app is what every command gets: streams and the configured logger.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *log.Logger

	logLevel  string
	logFormat string
	// notes are what the command line asked that changes nothing (a
	// nixos-anywhere flag for a step fleet does not have), said once
	// logging is set up.
	notes []string
}

// commandGroups are the constructors of the top-level commands; each
// command-group file adds its own in an init function, so adding a command
// never touches this file.
var commandGroups []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { commandGroups = append(commandGroups, f) }

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleet",
		Short: "Bring NixOS machines up from bare metal with their secrets, verified",
		Long: `fleet installs NixOS hosts over SSH from their flake and disko layout, stages
their agenix secrets through a scoped forwarded agent, and proves at first boot
that every declared secret decrypted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.setupLogging()
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w\nhint: see '%s --help'", err, c.CommandPath())}
	})
	for _, f := range commandGroups {
		root.AddCommand(f(a))
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	typeUsageErrors(root)
	return root
}

// typeUsageErrors makes every argument error of c and its subcommands a
// usageError (exit 2), as flag errors are: cobra returns them as plain
// errors. A command group is given an action that refuses an unknown
// subcommand the same way (cobra's own check runs where nothing can wrap
// it), and prints its help when called alone.
func typeUsageErrors(c *cobra.Command) {
	switch {
	case c.HasSubCommands() && !c.Runnable():
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return usageError{fmt.Errorf("unknown command %q for %q\nhint: see '%s --help'", args[0], c.CommandPath(), c.CommandPath())}
		}
	case c.Args != nil:
		check := c.Args
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{fmt.Errorf("%w\nhint: see '%s --help'", err, c.CommandPath())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		typeUsageErrors(sub)
	}
}

func (a *app) setupLogging() error {
	lvl, err := log.ParseLevel(a.logLevel)
	if err != nil {
		return usagef("unknown --log-level %q\nhint: use debug, info, warn or error", a.logLevel)
	}
	a.log.SetLevel(lvl)
	switch a.logFormat {
	case "text":
		a.log.SetFormatter(log.TextFormatter)
	case "json":
		a.log.SetFormatter(log.JSONFormatter)
	default:
		return usagef("unknown --log-format %q\nhint: use text or json", a.logFormat)
	}
	return nil
}

// Main runs fleet with the process's arguments and streams and returns the
// exit code. Deferred cleanups of commands run before it returns: nothing
// below calls os.Exit.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	a.log = log.NewWithOptions(stderr, log.Options{ReportTimestamp: true, TimeFormat: "15:04:05"})
	root := newRootCmd(a)
	// fleet install takes nixos-anywhere's command lines (anywhere.go).
	if c, _, err := root.Find(args); err == nil && c.Name() == "install" {
		fs := pflag.NewFlagSet("install", pflag.ContinueOnError)
		fs.AddFlagSet(c.Flags())
		fs.AddFlagSet(c.InheritedFlags())
		if args, a.notes, err = rewriteAnywhere(args, fs); err != nil {
			return a.report(err)
		}
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return a.report(err)
}

// report prints err the way every fleet command does (lowercase "error:"
// line, hint lines kept) and maps it to an exit code.
func (a *app) report(err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFail
	var ue usageError
	var oe *provision.OptionError
	var ee exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.quiet {
			return code
		}
	case errors.As(err, &ue), errors.As(err, &oe):
		code = exitUsage
	}
	// An interrupted install phase says what state it left; anything
	// else interrupted has nothing more to say.
	var pe *provision.PhaseError
	if errors.Is(err, context.Canceled) && !errors.As(err, &pe) {
		fmt.Fprintln(a.stderr, "error: interrupted")
		return exitFail
	}
	msg := err.Error()
	fmt.Fprintf(a.stderr, "error: %s\n", msg)
	return code
}
