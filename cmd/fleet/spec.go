package main

import (
	"fmt"
	"io"
	"regexp"
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
	cmd.Flags().StringVarP(&sf.flake, "flake", "f", ".", "the flake: DIR or DIR#HOST")
	cmd.Flags().StringVar(&sf.hostSpec, "host-spec", "", "read the host spec from this JSON file instead of evaluating the flake (schema: fleet spec --help)")
}

// flakeHost splits --flake DIR#HOST; ok is false when it names no host.
// HOST may be written out as nixos-anywhere and nixos-rebuild take it:
// nixosConfigurations.HOST or nixosConfigurations."HOST".config.
func (sf *specFlags) flakeHost() (dir, host string, ok bool) {
	dir, frag, _ := strings.Cut(sf.flake, "#")
	if dir == "" {
		dir = "."
	}
	if m := configAttr.FindStringSubmatch(frag); m != nil {
		frag = m[1] + m[2]
	}
	return dir, frag, frag != ""
}

// configAttr is a fragment that spells out the configuration.
var configAttr = regexp.MustCompile(`^nixosConfigurations\.(?:"([^"]+)"|([^."]+))(?:\.config)?$`)

// hostAndFlake splits --flake DIR#HOST and reconciles it with a host
// argument: either may name the host, and they must agree.
func (sf *specFlags) hostAndFlake(args []string) (host, dir string, err error) {
	dir, fromFlake, _ := sf.flakeHost()
	if strings.HasPrefix(fromFlake, "nixosConfigurations.") || strings.ContainsAny(fromFlake, `"#`) {
		return "", "", usagef("--flake %s: fleet installs a configuration's system, DIR#HOST or DIR#nixosConfigurations.HOST.config\nhint: a variant (a vmVariant, another attribute) is not a host fleet can install", sf.flake)
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
	var secretsInput string
	cmd := &cobra.Command{
		Use:   "spec HOST [--flake DIR] [--host-spec FILE] [--json]",
		Short: "Print what fleet knows about a host: system, disks, secrets, identities",
		Long: `Print the host spec fleet resolved: from --host-spec FILE, or from one nix eval
of the flake's nixosConfigurations.HOST.config. The JSON form is the --host-spec schema:

  {
    "name": "nas", "system": "x86_64-linux", "hostName": "nas",
    "disko": { "disk": { ... } },
    "secrets": { "smb-credentials": { "file": "hosts/nas/smb.age", "input": "secrets",
                 "path": "/run/agenix/smb-credentials",
                 "mode": "0400", "owner": "root", "group": "root", "symlink": true } },
    "identityPaths": ["/etc/ssh/ssh_host_ed25519_key"],
    "hostKeys": [{ "path": "/etc/ssh/ssh_host_ed25519_key", "type": "ed25519" }],
    "secretsInput": "secrets",
    "secretsDir": "/run/agenix", "secretsMountPoint": "/run/agenix.d"
  }

A secret's file is in a flake input, or in the flake itself (input "self"). From an
evaluation fleet works that out from the file's store path: each input's store path
follows from its narHash in flake.lock, and a path in the flake's own store path is
a file of the flake (--secrets-input NAME says it instead). In a spec file, a path is
relative to its "input" (default: "secretsInput", else "secrets"). Defaults follow
agenix: secretsDir /run/agenix, secretsMountPoint /run/agenix.d, path
SECRETSDIR/NAME, mode 0400, owner and group 0, symlink true, identityPaths the rsa
and ed25519 host keys; hostKeys follow NixOS (RSA, then ed25519). A hostKeys entry
may be a bare path, its type then read from the name (ssh_host_TYPE_key). Hosts that
use agenix-rekey (age.rekey) are refused.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := sf.source(args)
			if err != nil {
				return err
			}
			src.SecretsInput = secretsInput
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
	addSecretsInput(cmd, &secretsInput)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (the --host-spec schema)")
	return cmd
}

func printSpec(w io.Writer, s *provision.Spec) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "host\t%s (hostName %s)\n", s.Name, s.HostName)
	fmt.Fprintf(tw, "system\t%s\n", s.System)
	fmt.Fprintf(tw, "secrets input\t%s\n", inputName(s.SecretsInput))
	fmt.Fprintf(tw, "secrets dir\t%s (generations in %s)\n", s.SecretsDir, s.SecretsMountPoint)
	fmt.Fprintf(tw, "identity paths\t%s\n", strings.Join(s.IdentityPaths, ", "))
	var keys []string
	for _, k := range s.HostKeys {
		keys = append(keys, k.Path+" ("+dash(k.Type)+")")
	}
	fmt.Fprintf(tw, "host keys\t%s\n", strings.Join(keys, ", "))
	disko := "none"
	if len(s.Disko) > 2 {
		disko = "declared"
	}
	fmt.Fprintf(tw, "disko\t%s\n", disko)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tINPUT\tFILE\tPATH\tMODE\tOWNER\tGROUP")
	for _, n := range s.SecretNames() {
		sec := s.Secrets[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, sec.Input, sec.File, sec.Path, sec.Mode, sec.Owner, sec.Group)
	}
	tw.Flush()
}

// inputName says where the .age files are, for a table.
func inputName(in string) string {
	switch in {
	case provision.SelfInput:
		return "self (the flake's own files)"
	case "":
		return "-"
	}
	return in
}
