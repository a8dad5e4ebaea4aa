package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/remote"
)

func init() { register(newFactsCmd) }

func newFactsCmd(a *app) *cobra.Command {
	var cf connFlags
	var asJSON bool
	var parallel int
	cmd := &cobra.Command{
		Use:   "facts [TARGET...] [--target T] [--json]",
		Short: "Report what machines are: OS, system, installer or not, memory, disks and whether they are in use",
		Long: `Report what machines are: OS, system, installer or not, memory, disks and
whether they are in use.

With several targets (arguments, and --target), fleet connects to them at
once (--parallel at a time) and reports them in the order given: text
blocks headed "== TARGET", or with --json an array of objects that carry a
"target" field, and an "error" field for a machine that failed. A failed
target does not stop the others; it is named on stderr and the exit code
is 1.`,
		Example: `  fleet facts --target root@10.0.0.5 --host-key SHA256:uQ2k... --json
  fleet facts --target nas --accept-new
  fleet facts root@10.0.0.5 root@10.0.0.6:2222 nas --known-hosts ~/.ssh/known_hosts --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			if cf.target != "" {
				names = append(names, cf.target)
			}
			names = append(names, args...)
			if len(names) <= 1 {
				if len(names) == 1 {
					cf.target = names[0]
				}
				return factsOne(cmd.Context(), a, &cf, asJSON)
			}
			if cf.hostKey != "" {
				return usagef("--host-key pins one host; %d targets were given\nhint: with several targets use --known-hosts (or --accept-new to trust keys seen for the first time)", len(names))
			}
			if parallel < 1 {
				return usagef("--parallel %d: want 1 or more", parallel)
			}
			return factsMany(cmd.Context(), a, &cf, names, parallel, asJSON)
		},
	}
	cf.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (stable field names)")
	cmd.Flags().IntVar(&parallel, "parallel", 16, "with several targets, how many to connect to at once")
	return cmd
}

// factsOne reports the flags' one target.
func factsOne(ctx context.Context, a *app, cf *connFlags, asJSON bool) error {
	c, err := cf.dial(ctx, a)
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := facts.Gather(remote.WithPhase(ctx, "facts"), c)
	if err != nil {
		return err
	}
	if asJSON {
		out := struct {
			*facts.Facts
			HostKey string `json:"host_key"`
		}{f, fingerprint(c)}
		return a.printJSON(out)
	}
	printFacts(a.stdout, f, fingerprint(c))
	return nil
}

// hostFacts is one target's report when there are several: its facts, or
// why there are none.
type hostFacts struct {
	Target string `json:"target"` // as given
	*facts.Facts
	HostKey string `json:"host_key,omitempty"`
	Error   string `json:"error,omitempty"`

	err error
}

// factsMany reports several targets, gathered at most parallel at a time
// over one connection each, in the order they were given.
func factsMany(ctx context.Context, a *app, cf *connFlags, names []string, parallel int, asJSON bool) error {
	ts, o, forget, err := cf.resolveMany(a, names)
	if err != nil {
		return err
	}
	defer forget()
	out := make([]hostFacts, len(names))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, t := range ts {
		out[i].Target = names[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			out[i].Facts, out[i].HostKey, out[i].err = gatherOne(ctx, a, t, o)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("facts: %w", err)
	}
	failed := 0
	for i := range out {
		if out[i].err != nil {
			failed++
			out[i].Error = out[i].err.Error()
			fmt.Fprintf(a.stderr, "%s: %s\n", out[i].Target, out[i].Error)
		}
	}
	if asJSON {
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else {
		for i, h := range out {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintf(a.stdout, "== %s\n", h.Target)
			if h.err != nil {
				msg, _, _ := strings.Cut(h.Error, "\n")
				fmt.Fprintf(a.stdout, "error  %s\n", msg)
				continue
			}
			printFacts(a.stdout, h.Facts, h.HostKey)
		}
	}
	if failed > 0 {
		return fmt.Errorf("facts failed on %d of %d targets", failed, len(out))
	}
	return nil
}

// gatherOne connects to t, gathers its facts and closes the connection.
// The host key is returned once the host is verified, even if gathering
// then fails.
func gatherOne(ctx context.Context, a *app, t remote.Target, o remote.Options) (*facts.Facts, string, error) {
	c, err := dialTarget(ctx, a, t, o)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	f, err := facts.Gather(remote.WithPhase(ctx, "facts"), c)
	return f, fingerprint(c), err
}

func printFacts(w io.Writer, f *facts.Facts, hostKey string) {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "host\t%s\n", f.Host)
	fmt.Fprintf(tw, "host key\t%s\n", hostKey)
	fmt.Fprintf(tw, "os\t%s\n", f.OSName)
	fmt.Fprintf(tw, "kernel\t%s\n", f.Kernel)
	fmt.Fprintf(tw, "system\t%s\n", f.System)
	fmt.Fprintf(tw, "model\t%s\n", orDash(f.Model))
	fmt.Fprintf(tw, "uefi\t%s\n", yes(f.UEFI))
	fmt.Fprintf(tw, "nixos installer\t%s (%s)\n", yes(f.Installer), f.InstallerReason)
	fmt.Fprintf(tw, "nix\t%s\n", yes(f.HasNix))
	fmt.Fprintf(tw, "nixos-install\t%s\n", yes(f.HasNixOSInst))
	fmt.Fprintf(tw, "memory\t%s\n", facts.HumanBytes(f.MemoryBytes))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK\tSIZE\tMODEL\tTYPE\tSTATE")
	for _, d := range f.Disks {
		kind := "ssd"
		if d.Rotational {
			kind = "hdd"
		}
		if d.Removable {
			kind += ",removable"
		}
		state := "free"
		if !d.Free() {
			state = "in use: " + strings.Join(d.InUse, ", ")
		}
		if d.Root {
			state += " (running root)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Path, facts.HumanBytes(d.SizeBytes), orDash(d.Model), kind, state)
		for _, p := range d.Partitions {
			fmt.Fprintf(tw, "  %s\t%s\t\t\t%s\n", p.Path, facts.HumanBytes(p.SizeBytes), strings.Join(p.Mounts, " "))
		}
		for _, id := range d.ByID {
			fmt.Fprintf(tw, "  %s\t\t\t\t\n", id)
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
