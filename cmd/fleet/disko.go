package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/remote"
)

func init() { register(newDiskoCmd) }

func newDiskoCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "disko",
		Short: "Turn a disko layout into real, verified block devices",
	}
	cmd.AddCommand(newDiskoPlanCmd(a), newDiskoApplyCmd(a))
	return cmd
}

// parseNameValues reads NAME=VALUE flags.
func parseNameValues(flag string, vals []string) (map[string]string, error) {
	m := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" || val == "" {
			return nil, usagef("--%s %q: want NAME=VALUE", flag, v)
		}
		m[k] = val
	}
	return m, nil
}

func newDiskoPlanCmd(a *app) *cobra.Command {
	var spec, mode string
	var devices, keep []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan --spec FILE",
		Short: "Print the ordered steps and exact commands for a layout; touches nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec == "" {
				return usagef("--spec is required")
			}
			devs, err := parseNameValues("device", devices)
			if err != nil {
				return err
			}
			m, err := disko.ParseMode(mode)
			if err != nil {
				return usagef("%v", err)
			}
			s, err := disko.Load(cmd.Context(), &remote.Local{Log: a.log}, spec)
			if err != nil {
				return err
			}
			steps, err := disko.BuildPlan(s, m, disko.Options{Devices: devs, Keep: keep})
			if err != nil {
				return err
			}
			if asJSON {
				if steps == nil {
					steps = []disko.Step{}
				}
				return a.printJSON(steps)
			}
			for i, st := range steps {
				fmt.Fprintf(a.stdout, "%d. %s\n", i+1, st.String())
				for _, c := range st.Cmds {
					line := remote.ShellJoin(c)
					if st.KeyName != "" {
						line += " < disk-key:" + st.KeyName
					}
					fmt.Fprintf(a.stdout, "   %s\n", line)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "disko layout: JSON (either form) or a .nix file")
	cmd.Flags().StringArrayVar(&devices, "device", nil, "NAME=PATH: use PATH for disk NAME")
	cmd.Flags().StringVar(&mode, "mode", "destroy,format,mount", "destroy,format,mount | format | mount | unmount")
	addKeepFlag(cmd.Flags(), &keep)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDiskoApplyCmd(a *app) *cobra.Command {
	var spec, mode, root string
	var devices, keys, keep []string
	var local, yes, wipe bool
	var cf connFlags
	cmd := &cobra.Command{
		Use:   "apply --spec FILE (--local | --target T)",
		Short: "Partition, format and mount a disko layout, verifying each step",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if spec == "" {
				return usagef("--spec is required")
			}
			if local == (cf.target != "") {
				return usagef("give exactly one of --local and --target")
			}
			devs, err := parseNameValues("device", devices)
			if err != nil {
				return err
			}
			keyFiles, err := parseNameValues("disk-key", keys)
			if err != nil {
				return err
			}
			m, err := disko.ParseMode(mode)
			if err != nil {
				return usagef("%v", err)
			}
			if !strings.HasPrefix(root, "/") {
				return usagef("--root %q: must be an absolute path", root)
			}
			var r remote.Runner = &remote.Local{Log: a.log}
			if !local {
				c, err := cf.dial(cmd.Context(), a)
				if err != nil {
					return err
				}
				defer c.Close()
				r = c
			}
			s, err := disko.Load(cmd.Context(), &remote.Local{Log: a.log}, spec)
			if err != nil {
				return err
			}
			keyBytes := map[string][]byte{}
			for name, f := range keyFiles {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--disk-key %s: %w", name, err)
				}
				keyBytes[name] = b
			}
			opt := disko.ApplyOptions{Mode: m, Plan: disko.Options{Root: root, Devices: devs, Keep: keep}, Wipe: wipe, Yes: yes, Keys: keyBytes, Log: a.log}
			opt.Confirm = a.confirmDisks()
			return disko.Apply(remote.WithPhase(cmd.Context(), "disko"), r, s, opt)
		},
	}
	cmd.Flags().StringVar(&spec, "spec", "", "disko layout: JSON (either form) or a .nix file")
	cmd.Flags().StringArrayVar(&devices, "device", nil, "NAME=PATH: use PATH for disk NAME")
	cmd.Flags().StringVar(&mode, "mode", "destroy,format,mount", "destroy,format,mount | format | mount | unmount")
	cf.add(cmd.Flags())
	cmd.Flags().BoolVar(&local, "local", false, "apply on this machine")
	cmd.Flags().StringVar(&root, "root", "/mnt", "mount the layout under this directory")
	cmd.Flags().StringArrayVar(&keys, "disk-key", nil, "NAME=FILE: key for LUKS device NAME or ZFS encryption root NAME (pool/dataset), sent on stdin")
	cmd.Flags().BoolVar(&yes, "yes", false, "destroy without asking")
	cmd.Flags().BoolVar(&wipe, "wipe", false, "format: replace what does not match the layout")
	addKeepFlag(cmd.Flags(), &keep)
	return cmd
}

// addKeepFlag registers --keep, the layout's disks never written.
func addKeepFlag(f *pflag.FlagSet, keep *[]string) {
	f.StringSliceVar(keep, "keep", nil, "the layout's disks to keep as they are (NAME,NAME...): checked against the layout, assembled and mounted, never wiped, partitioned or formatted")
}

// confirmDisks asks, at a terminal, to type the names of the disks about
// to be erased, each shown with its device path; with no terminal it is
// nil (destroying then needs --yes).
func (a *app) confirmDisks() func(disks []disko.Target) bool {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(disks []disko.Target) bool {
		fmt.Fprint(a.stderr, confirmPrompt(disks))
		line, _ := bufio.NewReader(a.stdin).ReadString('\n')
		return strings.Join(strings.Fields(line), " ") == strings.Join(targetNames(disks), " ")
	}
}

// confirmPrompt lists each disk to be erased with its path and the node
// it resolves to, and what destroy takes down on it first (an old
// install's arrays, volume groups, LUKS mappings and signatures), then
// asks for their names.
func confirmPrompt(disks []disko.Target) string {
	var b strings.Builder
	b.WriteString("This erases every byte on:\n")
	for _, d := range disks {
		fmt.Fprintf(&b, "  %s  %s", d.Name, d.Device)
		if d.Node != "" && d.Node != d.Device {
			fmt.Fprintf(&b, " (%s)", d.Node)
		}
		if d.Size > 0 {
			fmt.Fprintf(&b, ", %.1f GB", float64(d.Size)/1e9)
		}
		b.WriteString("\n")
		for _, w := range d.TakeDown {
			fmt.Fprintf(&b, "        first: %s\n", remote.Escape(w))
		}
	}
	fmt.Fprintf(&b, "Type the disk names (%s) to continue: ", strings.Join(targetNames(disks), " "))
	return b.String()
}

func targetNames(disks []disko.Target) []string {
	names := make([]string, len(disks))
	for i, d := range disks {
		names[i] = d.Name
	}
	return names
}
