package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/hwconfig"
	"github.com/fleetnix/fleet/provision"
)

func init() { register(newInstallCmd) }

// hostFlags are the host install installs: which host, its spec, where
// its .age files are, and the identity that decrypts them.
type hostFlags struct {
	spec         specFlags
	identity     string
	secretsDir   string
	secretsInput string
}

func (hf *hostFlags) add(cmd *cobra.Command) {
	hf.spec.add(cmd)
	cmd.Flags().StringVar(&hf.identity, "host-identity", "", "the private key the host decrypts its secrets with (the fleet identity or a per-host key)")
	cmd.Flags().StringVar(&hf.secretsDir, "secrets-dir", "", "a local clone of the secrets repository to read the locked rev from (default: fetch the locked URL)")
	addSecretsInput(cmd, &hf.secretsInput)
}

// addSecretsInput registers --secrets-input.
func addSecretsInput(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "secrets-input", "", "the flake input that holds the .age files, or self for the flake itself (default: worked out from the evaluated paths)")
}

// source is the host the flags name and where its spec comes from.
func (hf *hostFlags) source(args []string) (provision.HostSource, error) {
	src, err := hf.spec.source(args)
	src.SecretsDir, src.SecretsInput = hf.secretsDir, hf.secretsInput
	return src, err
}

func newInstallCmd(a *app) *cobra.Command {
	var (
		cf       connFlags
		hf       hostFlags
		o        provision.Options
		phases   string
		devices  []string
		diskKeys []string
		hardware string
		diskMode string
		chowns   []string
		sshPort  int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "install HOST --target T [--flake DIR] (--host-identity KEY | --host-identity-age FILE)",
		Short: "Install a NixOS host from a live installer, with its secrets, verified at first boot",
		Long: `Install HOST on the live NixOS installer at --target: partition its disks from the
host's disko layout, stage the flake and the secrets input (fetched by the installer
through a scoped forwarded agent), install the decryption identity, run nixos-install,
scan the installer for leftovers, reboot, and check that the first boot decrypted every
declared secret.

Phases (--phases picks a subset): ` + strings.Join(provision.AllPhases, ", ") + `.

nixos-anywhere's command lines work as they are: every flag of nixos-anywhere
means what it means there, differs as the README's table says, or is refused
with what to use instead. So do --flake .#nas root@10.0.0.5 (the host to install
on as the argument), --phases kexec,disko,install,reboot and
--disk-encryption-keys /tmp/secret.key ./vault.key (the LUKS device whose layout
reads /tmp/secret.key gets the key, on cryptsetup's stdin only).

--generate-hardware-config writes the host's hardware configuration (the disk and
network controllers' kernel modules for its initrd, its CPU's microcode, its
platform) to PATH in preflight, from the installer's own nixos-generate-config or
nixos-facter when it has one, else from its /sys and /proc. Put PATH in the flake
and import it from the host: the install stages it with the flake (in a git flake
it is added with --intent-to-add), and the first-boot check compares the root
device's drivers with the initrd modules the configuration declares.

The forwarded agent holds only the --forward-key keys (default: the IdentityFile
~/.ssh/config gives the secrets server), signs a few times (--forward-max-signatures)
within a few minutes (--forward-ttl), and only while the installer fetches.`,
		Example: `  fleet install nas --target root@10.0.0.5 --host-key SHA256:uQ2k... --flake ./homelab --host-identity ~/.ssh/nas_host
  fleet install --flake .#nas --target root@nixos --accept-new --host-identity ./fleet.key --dry-run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range a.notes {
				a.log.Info("nixos-anywhere flag: " + n)
			}
			// nixos-anywhere's form: the flake names the host, the
			// argument is the machine to install on.
			if _, host, ok := hf.spec.flakeHost(); ok && len(args) == 1 && args[0] != host && cf.target == "" {
				cf.target, args = args[0], nil
			}
			if err := cf.applyPort(sshPort); err != nil {
				return err
			}
			var err error
			if o.Target, o.Dial, err = cf.resolve(a); err != nil {
				return err
			}
			if o.Host, err = hf.source(args); err != nil {
				return err
			}
			for _, c := range chowns {
				p, owner, ok := strings.Cut(c, "=")
				if !ok {
					return usagef("--chown %q: want PATH=OWNER (or nixos-anywhere's PATH OWNER)", c)
				}
				o.Chown = append(o.Chown, provision.Chown{Path: p, Owner: owner})
			}
			if phases != "" {
				o.Phases = strings.Split(phases, ",")
			}
			if o.DiskOptions.Devices, err = parseNameValues("device", devices); err != nil {
				return err
			}
			if o.DiskOptions.KeyFiles, err = parseNameValues("disk-key", diskKeys); err != nil {
				return err
			}
			if hardware != "" {
				b, p, ok := strings.Cut(hardware, "=")
				if !ok || b == "" || p == "" {
					return usagef("--generate-hardware-config %q: want BACKEND PATH (%s), as nixos-anywhere spells it", hardware, strings.Join(hwconfig.Backends, " or "))
				}
				o.HardwareConfig = provision.HardwareConfig{Backend: b, Path: p}
			}
			if o.DiskOptions.Mode, err = provision.ParseDiskoMode(diskMode); err != nil {
				return err
			}
			o.Identity = hf.identity
			o.OperatorPassphrase = terminalPassphrase
			o.DiskOptions.Confirm = a.confirmDisks()
			o.Log, o.Out = a.log, a.stdout
			done := a.showProgress(&o)
			sum, err := provision.Install(cmd.Context(), o)
			done()
			if len(sum.Phases) > 0 {
				if asJSON {
					if jerr := a.printJSON(sum); err == nil {
						err = jerr
					}
				} else if !o.DryRun {
					printSummary(a.stdout, sum)
				}
			}
			return err
		},
	}
	cf.add(cmd.Flags())
	hf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&phases, "phases", "", "run only these phases, comma-separated ("+strings.Join(provision.AllPhases, ",")+")")
	f.BoolVar(&o.DryRun, "dry-run", false, "print every step and command; change nothing")
	f.BoolVar(&o.Resume, "resume", false, "continue after the phases an earlier run completed")
	f.BoolVar(&o.Force, "force", false, "install even if the target is not a NixOS installer")
	f.BoolVar(&o.NoReboot, "no-reboot", false, "stop before the reboot (and the first-boot check)")
	f.StringVar(&o.Root, "root", "/mnt", "where the new system is mounted on the installer")
	f.StringVar(&o.SecretsFetch, "secrets-fetch", provision.FetchAuto, "who fetches the secrets input: installer (through the scoped agent), local (this machine, streamed in; no agent forwarded), or auto: the installer when it has git")
	o.Forward.AddFlags(f)
	f.StringArrayVar(&devices, "device", nil, "use PATH for the layout's disk NAME (NAME=PATH, repeatable)")
	f.StringArrayVar(&diskKeys, "disk-key", nil, "key for LUKS device or ZFS encryption root NAME from local FILE, given on stdin (NAME=FILE, repeatable)")
	f.BoolVar(&o.DiskOptions.Yes, "yes", false, "erase the layout's disks without asking (at a terminal fleet asks you to type their names)")
	addKeepFlag(f, &o.DiskOptions.Keep)
	f.StringVar(&diskMode, "disko-mode", "disko", "disko (or destroy): erase, format and mount the layout's disks; format: create what is missing, then mount; mount: only mount")
	f.StringVar(&o.ExtraFiles, "extra-files", "", "a local directory copied onto the new root (owned by root)")
	f.StringVar(&hardware, "generate-hardware-config", "", "write the host's hardware configuration to a local file before the install, with the installer's own tool or from its /sys: BACKEND PATH, BACKEND being "+strings.Join(hwconfig.Backends, " or ")+" (nixos-anywhere's spelling; also BACKEND=PATH); PATH inside the flake is staged with it")
	f.StringArrayVar(&chowns, "chown", nil, "own PATH under the extra files, recursively: PATH=UID:GID (repeatable; nixos-anywhere's --chown PATH OWNER too)")
	f.IntVarP(&sshPort, "ssh-port", "p", 0, "the SSH port, when --target gives none (nixos-anywhere's -p)")
	f.StringArrayVar(&o.NixOptions, "option", nil, "nix setting for nixos-install (NAME=VALUE, repeatable; passed in NIX_CONFIG and redacted from logs)")
	f.StringVar(&o.VerifyUser, "verify-user", "root", "who fleet logs in as on the installed system after the reboot, with your keys (the host's configuration must authorize one: users.users.root.openssh.authorizedKeys.keys); the installer's login password is not offered there")
	f.StringVar(&o.IdentityDest, "identity-dest", "", "where the identity goes on the host, one of its age.identityPaths (default: the host key path of the key's own type; for an age identity, an identity path that is no host key's)")
	f.StringVar(&o.IdentityAge, "host-identity-age", "", "instead of --host-identity: the host's escrowed identity in the secrets repository (hosts/HOST/host-key.age, from fleet keys escrow), decrypted in memory with --operator-identity")
	f.StringArrayVar(&o.OperatorIdentities, "operator-identity", nil, "the operator's identity that decrypts --host-identity-age: SSH private key or age identity file (repeatable; default ~/.ssh/id_ed25519 and ~/.ssh/id_rsa)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.StringVar(&o.EvalOn, "eval-on", provision.EvalLocal, "where the flake is evaluated into the host spec: local (needs nix here) or installer")
	return cmd
}

func printSummary(w io.Writer, s *provision.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tSTATUS\tTIME")
	for _, p := range s.Phases {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Phase, p.Status, p.Duration.Round(10*time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nssh connections opened: %d\n", s.Connections)
	if s.ForwardPolicy != "" {
		fmt.Fprintf(w, "forwarded agent: %s\n", s.ForwardPolicy)
	}
	if s.Forwarding != "" {
		fmt.Fprintf(w, "forwarded agent: %s\n", s.Forwarding)
	}
	if s.SecretsFetch == provision.FetchLocal {
		why := ""
		if s.SecretsFetchWhy != "" {
			why = ": " + s.SecretsFetchWhy
		}
		fmt.Fprintf(w, "secrets input: fetched on this machine and streamed to the installer%s\n", why)
	}
	if s.Identity != "" {
		fmt.Fprintf(w, "host identity: restored from %s\n", s.Identity)
	}
	if s.HostKey != "" {
		fmt.Fprintf(w, "installed host key: %s\n", s.HostKey)
	}
	if s.InstalledLogin != "" {
		fmt.Fprintf(w, "installed system reached as: %s\n", s.InstalledLogin)
	}
	if s.Verify != nil {
		fmt.Fprintln(w)
		printReport(w, s.Verify)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
