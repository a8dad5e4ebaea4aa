package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/provision"
	"github.com/fleetnix/fleet/remote"
)

func init() { register(newSpecCmd) }

// specFlags choose where a host's spec comes from.
type specFlags struct {
	flake    string // DIR or DIR#HOST (nixos-anywhere's --flake .#nas)
	hostSpec string // a JSON file
}

func (sf *specFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&sf.flake, "flake", ".", "the flake: DIR or DIR#HOST")
	cmd.Flags().StringVar(&sf.hostSpec, "host-spec", "", "read the host spec from this JSON file instead of evaluating the flake (schema: fleet spec --help)")
}

// hostAndFlake splits --flake DIR#HOST and reconciles it with a host
// argument: either may name the host, and they must agree.
func (sf *specFlags) hostAndFlake(args []string) (host, dir string, err error) {
	dir, fromFlake, _ := strings.Cut(sf.flake, "#")
	if dir == "" {
		dir = "."
	}
	switch {
	case len(args) > 0 && fromFlake != "" && args[0] != fromFlake:
		return "", "", usagef("host %q and --flake %s name different hosts", args[0], sf.flake)
	case len(args) > 0:
		host = args[0]
	case fromFlake != "":
		host = fromFlake
	default:
		return "", "", usagef("which host?\nhint: fleet spec nas, or --flake .#nas")
	}
	return host, dir, nil
}

// source is the host the flags name and where its spec comes from.
func (sf *specFlags) source(args []string) (provision.HostSource, error) {
	host, dir, err := sf.hostAndFlake(args)
	return provision.HostSource{Name: host, FlakeDir: dir, SpecFile: sf.hostSpec}, err
}

func newSpecCmd(a *app) *cobra.Command {
	var sf specFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "spec HOST [--flake DIR] [--host-spec FILE] [--json]",
		Short: "Print what fleet knows about a host: system, disks, secrets, identities",
		Long: `Print the host spec fleet resolved: from --host-spec FILE, or from one nix eval
of the flake's nixosConfigurations.HOST.config. The JSON form is the --host-spec schema:

  {
    "name": "nas", "system": "x86_64-linux", "hostName": "nas",
    "disko": { "disk": { ... } },
    "secrets": { "smb-credentials": { "file": "hosts/nas/smb.age", "path": "/run/agenix/smb-credentials",
                 "mode": "0400", "owner": "root", "group": "root", "symlink": true } },
    "identityPaths": ["/etc/ssh/ssh_host_ed25519_key"],
    "hostKeys": ["/etc/ssh/ssh_host_ed25519_key"],
    "secretsInput": "secrets"
  }

Secret files are paths inside the secrets repository (store paths into it are accepted).
Defaults follow agenix: path /run/agenix/NAME, mode 0400, owner and group 0, symlink true,
identityPaths the host keys.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := sf.source(args)
			if err != nil {
				return err
			}
			s, err := src.Load(cmd.Context(), &remote.Local{Log: a.log})
			if err != nil {
				return err
			}
			if asJSON {
				return a.printJSON(s)
			}
			printSpec(a.stdout, s)
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (the --host-spec schema)")
	return cmd
}

func printSpec(w io.Writer, s *provision.Spec) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "host\t%s (hostName %s)\n", s.Name, s.HostName)
	fmt.Fprintf(tw, "system\t%s\n", s.System)
	fmt.Fprintf(tw, "secrets input\t%s\n", s.SecretsInput)
	fmt.Fprintf(tw, "identity paths\t%s\n", strings.Join(s.IdentityPaths, ", "))
	fmt.Fprintf(tw, "host keys\t%s\n", strings.Join(s.HostKeys, ", "))
	disko := "none"
	if len(s.Disko) > 2 {
		disko = "declared"
	}
	fmt.Fprintf(tw, "disko\t%s\n", disko)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tFILE\tPATH\tMODE\tOWNER\tGROUP")
	for _, n := range s.SecretNames() {
		sec := s.Secrets[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, sec.File, sec.Path, sec.Mode, sec.Owner, sec.Group)
	}
	tw.Flush()
}
