package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/remote"
)

func init() { register(newFactsCmd) }

func newFactsCmd(a *app) *cobra.Command {
	var cf connFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "facts --target T [--json]",
		Short: "Report what a machine is: OS, system, installer or not, memory, disks and whether they are in use",
		Example: `  fleet facts --target root@10.0.0.5 --host-key SHA256:uQ2k... --json
  fleet facts --target nas --accept-new`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.dial(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer c.Close()
			f, err := facts.Gather(remote.WithPhase(cmd.Context(), "facts"), c)
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					*facts.Facts
					HostKey string `json:"host_key"`
				}{f, fingerprint(c)}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			printFacts(a.stdout, f, fingerprint(c))
			return nil
		},
	}
	cf.add(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (stable field names)")
	return cmd
}

func fingerprint(c *remote.Client) string { return ssh.FingerprintSHA256(c.HostKey()) }

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
	fmt.Fprintf(tw, "nixos installer\t%s\n", yes(f.Installer))
	fmt.Fprintf(tw, "nix\t%s\n", yes(f.HasNix))
	fmt.Fprintf(tw, "nixos-install\t%s\n", yes(f.HasNixOSInst))
	fmt.Fprintf(tw, "memory\t%s\n", humanBytes(f.MemoryBytes))
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
		model := d.Model
		if model == "" {
			model = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Path, humanBytes(d.SizeBytes), model, kind, state)
		for _, p := range d.Partitions {
			fmt.Fprintf(tw, "  %s\t%s\t\t\t%s\n", p.Path, humanBytes(p.SizeBytes), strings.Join(p.Mounts, " "))
		}
		for _, id := range d.ByID {
			fmt.Fprintf(tw, "  %s\t\t\t\t\n", id)
		}
	}
	tw.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
