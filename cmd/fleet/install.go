package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/provision"
	"github.com/fleetnix/fleet/remote"
)

func init() {
	register(newInstallCmd)
	register(newVerifyCmd)
}

// Hooks the disk and forwarding implementations set (disko, agentfwd).
var (
	// newDisks builds the disk layout step from the spec's disko devices,
	// --device overrides and --disk-key files.
	newDisks func(a *app, spec *provision.Spec, devices, diskKeys []string, yes bool) (provision.Disks, error)
)

// hostFlags are what install and verify share: which host, its spec, and
// the identity that decrypts its secrets.
type hostFlags struct {
	spec       specFlags
	identity   string
	secretsDir string
}

func (hf *hostFlags) add(cmd *cobra.Command) {
	hf.spec.add(cmd)
	cmd.Flags().StringVar(&hf.identity, "host-identity", "", "the private key the host decrypts its secrets with (the fleet identity or a per-host key)")
	cmd.Flags().StringVar(&hf.secretsDir, "secrets-dir", "", "a local clone of the secrets repository to read the locked rev from (default: fetch the locked URL)")
}

// hostContext is a host's spec, lock and the local decryption of its secrets.
type hostContext struct {
	spec      *provision.Spec
	dir       string
	lock      *flake.Lock
	decrypted map[string]string
}

// load resolves the spec and lock and decrypts every declared secret
// locally (sha256 only, plaintext in memory).
func (hf *hostFlags) load(ctx context.Context, a *app, args []string) (*hostContext, error) {
	local := &remote.Local{Log: a.log}
	spec, dir, err := hf.spec.load(ctx, local, args, hf.evalOverrides()...)
	if err != nil {
		return nil, err
	}
	hc := &hostContext{spec: spec, dir: dir, decrypted: map[string]string{}}
	lockPath := filepath.Join(dir, "flake.lock")
	if hc.lock, err = flake.ReadLock(lockPath); err != nil {
		if len(spec.Secrets) == 0 {
			hc.lock = nil
			return hc, nil
		}
		return nil, err
	}
	hc.decrypted, err = hf.decrypt(ctx, a, spec, hc.lock)
	return hc, err
}

// decrypt decrypts every secret spec declares with --host-identity,
// locally, and returns their sha256s.
func (hf *hostFlags) decrypt(ctx context.Context, a *app, spec *provision.Spec, lock *flake.Lock) (map[string]string, error) {
	if len(spec.Secrets) == 0 || hf.identity == "" || lock == nil {
		return map[string]string{}, nil
	}
	local := &remote.Local{Log: a.log}
	in, err := lock.Input(spec.SecretsInput)
	if err != nil {
		return nil, err
	}
	ids, err := provision.LoadIdentity(hf.identity)
	if err != nil {
		return nil, err
	}
	src, err := provision.OpenSecrets(ctx, local, in, hf.secretsDir)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	decrypted, failed := provision.DecryptAll(ctx, local, spec, src, ids)
	if len(failed) > 0 {
		return nil, fmt.Errorf("identity %s cannot decrypt every secret %s declares:\n  %s\nhint: rekey them to its public key (fleet secrets rekey), or pass the right --host-identity", hf.identity, spec.Name, strings.Join(failed, "\n  "))
	}
	return decrypted, nil
}

// evalOverrides make a local evaluation read the secrets input from
// --secrets-dir at the locked rev, so evaluating the spec needs no access
// to the secrets repository's server (only paths into it matter to the
// spec, and fleet reads those relative to the repository).
func (hf *hostFlags) evalOverrides() []string {
	if hf.secretsDir == "" || hf.spec.hostSpec != "" {
		return nil
	}
	dir, _, _ := strings.Cut(hf.spec.flake, "#")
	if dir == "" {
		dir = "."
	}
	lock, err := flake.ReadLock(filepath.Join(dir, "flake.lock"))
	if err != nil {
		return nil
	}
	in, err := lock.Input(provision.DefaultSecretsInput)
	if err != nil || in.Locked.Rev == "" {
		return nil
	}
	abs, err := filepath.Abs(hf.secretsDir)
	if err != nil {
		return nil
	}
	return []string{"--override-input", provision.DefaultSecretsInput, "git+file://" + abs + "?rev=" + in.Locked.Rev}
}

func newInstallCmd(a *app) *cobra.Command {
	var (
		cf         connFlags
		hf         hostFlags
		phases     string
		dryRun     bool
		resume     bool
		force      bool
		noReboot   bool
		root       string
		fetch      string
		fwdOpts    agentfwd.Options
		devices    []string
		diskKeys   []string
		extraFiles string
		options    []string
		identDest  string
		asJSON     bool
		yes        bool
		evalOn     string
	)
	cmd := &cobra.Command{
		Use:   "install HOST --target T [--flake DIR] --host-identity KEY",
		Short: "Install a NixOS host from a live installer, with its secrets, verified at first boot",
		Long: `Install HOST on the live NixOS installer at --target: partition its disks from the
host's disko layout, stage the flake and the secrets input (fetched by the installer
through a scoped forwarded agent), install the decryption identity, run nixos-install,
scan the installer for leftovers, reboot, and check that the first boot decrypted every
declared secret.

Phases (--phases picks a subset): ` + strings.Join(provision.AllPhases, ", ") + `.
nixos-anywhere's spellings work: --flake .#nas, --target-host, -i, --phases,
--no-reboot, --extra-files, --disk-encryption-keys NAME FILE.`,
		Example: `  fleet install nas --target root@10.0.0.5 --host-key SHA256:uQ2k... --flake ./homelab --host-identity ~/.ssh/nas_host
  fleet install --flake .#nas --target root@nixos --accept-new --host-identity ./fleet.key --dry-run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, dial, err := cf.resolve(a)
			if err != nil {
				return err
			}
			if hf.identity == "" && !dryRun {
				return usagef("--host-identity is required: the key the host will decrypt its secrets with\nhint: fleet keys create --out nas.key makes one; add its public key to secrets.nix and rekey")
			}
			if fetch != "installer" && fetch != "local" {
				return usagef("--secrets-fetch %q: want installer or local", fetch)
			}
			ph := provision.AllPhases
			if phases != "" {
				ph = strings.Split(phases, ",")
				for _, p := range ph {
					if p == "kexec" {
						return usagef("--phases kexec: fleet does not kexec; boot the NixOS installer on the target first")
					}
				}
			}
			if noReboot {
				var keep []string
				for _, p := range ph {
					if p != provision.PhaseReboot && p != provision.PhaseVerify {
						keep = append(keep, p)
					}
				}
				ph = keep
			}
			ctx := cmd.Context()
			var hc *hostContext
			evalThere := false
			switch {
			case evalOn == "local" || hf.spec.hostSpec != "":
				if hc, err = hf.load(ctx, a, args); err != nil {
					return err
				}
			case evalOn != "installer":
				return usagef("--eval-on %q: want local or installer", evalOn)
			case dryRun:
				return usagef("--dry-run cannot evaluate on the installer: that fetches the secrets there\nhint: evaluate locally (drop --eval-on), or pass --host-spec FILE")
			case fetch != "installer":
				return usagef("--eval-on installer needs --secrets-fetch installer: the installer evaluates with the secrets it fetched")
			default:
				host, dir, err := hf.spec.hostAndFlake(args)
				if err != nil {
					return err
				}
				lock, err := flake.ReadLock(filepath.Join(dir, "flake.lock"))
				if err != nil {
					return err
				}
				// The rest of the spec comes from the installer's evaluation.
				hc = &hostContext{spec: &provision.Spec{Name: host}, dir: dir, lock: lock}
				evalThere = true
			}
			o := provision.Options{
				Spec: hc.spec, FlakeDir: hc.dir, Lock: hc.lock, Target: t, Dial: dial,
				Root: root, Phases: ph, DryRun: dryRun, Resume: resume, Force: force,
				Identity: hf.identity, IdentityDest: identDest, Decrypted: hc.decrypted,
				SecretsFetch: fetch, ExtraFiles: extraFiles, Log: a.log, Out: a.stdout,
			}
			for _, kv := range options {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return usagef("--option %q: want NAME=VALUE", kv)
				}
				o.InstallArgs = append(o.InstallArgs, "--option", k, v)
			}
			// complete fills in what depends on the spec: the disk layout.
			complete := func(o *provision.Options) error {
				if len(o.Spec.Disko) > 2 {
					if newDisks == nil {
						return errors.New("this build of fleet cannot lay out disks yet\nhint: run the disko phase by hand and pass --phases stage,identity,install,scan,reboot,verify")
					}
					var err error
					if o.Disks, err = newDisks(a, o.Spec, devices, diskKeys, yes); err != nil {
						return err
					}
				}
				return nil
			}
			if evalThere {
				o.EvalOnInstaller = true
				o.Prepare = func(ctx context.Context, o *provision.Options) error {
					var err error
					if o.Decrypted, err = hf.decrypt(ctx, a, o.Spec, o.Lock); err != nil {
						return err
					}
					return complete(o)
				}
			} else if err := complete(&o); err != nil {
				return err
			}
			needsFetch := len(hc.spec.Secrets) > 0 || evalThere
			if fwdOpts.Disabled && fetch == "installer" && needsFetch {
				return usagef("--no-forward-agent leaves the installer no way to fetch the secrets\nhint: add --secrets-fetch local")
			}
			if !fwdOpts.Disabled && fetch == "installer" && needsFetch && !dryRun {
				fwd, closeAgent, err := scopedForwarder(a, fwdOpts)
				if err != nil {
					return err
				}
				defer closeAgent()
				o.Forward = fwd
			}
			sum, err := provision.Install(ctx, o)
			if sum != nil && len(sum.Phases) > 0 {
				if asJSON {
					if jerr := a.printJSON(sum); err == nil {
						err = jerr
					}
				} else if !dryRun {
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
	f.BoolVar(&dryRun, "dry-run", false, "print every step and command; change nothing")
	f.BoolVar(&resume, "resume", false, "continue after the phases an earlier run completed")
	f.BoolVar(&force, "force", false, "install even if the target is not a NixOS installer")
	f.BoolVar(&noReboot, "no-reboot", false, "stop before the reboot (and the first-boot check)")
	f.StringVar(&root, "root", "/mnt", "where the new system is mounted on the installer")
	f.StringVar(&fetch, "secrets-fetch", "installer", "who fetches the secrets input: installer (through the scoped agent) or local")
	fwdOpts.AddFlags(f)
	f.StringArrayVar(&devices, "device", nil, "use PATH for the layout's disk NAME (NAME=PATH, repeatable)")
	f.StringArrayVar(&diskKeys, "disk-key", nil, "LUKS key for NAME from local FILE, given to cryptsetup on stdin (NAME=FILE, repeatable)")
	f.StringVar(&extraFiles, "extra-files", "", "a local directory copied onto the new root (owned by root)")
	f.StringArrayVar(&options, "option", nil, "nix option for nixos-install (NAME=VALUE, repeatable)")
	f.StringVar(&identDest, "identity-dest", "", "where the identity goes on the host (default: the spec's first identity path)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.BoolVar(&yes, "yes", false, "erase the layout's disks without asking (at a terminal fleet asks you to type their names)")
	f.StringVar(&evalOn, "eval-on", "local", "where the flake is evaluated into the host spec: local (needs nix here) or installer")
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
	if s.Forwarding != "" {
		fmt.Fprintf(w, "forwarded agent: %s\n", s.Forwarding)
	}
	if s.HostKey != "" {
		fmt.Fprintf(w, "installed host key: %s\n", s.HostKey)
	}
	if s.Verify != nil {
		fmt.Fprintln(w)
		printReport(w, s.Verify)
	}
}

func printReport(w io.Writer, r *provision.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SECRET\tPATH\tMODE\tOWNER\tGROUP\tFS\tCONTENT\tRESULT")
	for _, s := range r.Secrets {
		res := "ok"
		if !s.OK {
			res = strings.Join(s.Problems, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Path, dash(s.Mode), dash(s.Owner), dash(s.Group), dash(s.FSType), s.Content, res)
	}
	for _, i := range r.Identities {
		res := "ok"
		if !i.OK {
			res = strings.Join(i.Problems, "; ")
		} else if !i.Exists {
			res = "absent (skipped, as agenix does)"
		}
		fmt.Fprintf(tw, "identity\t%s\t%s\t%s\t\t\t\t%s\n", i.Path, dash(i.Mode), dash(i.Owner), res)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newVerifyCmd(a *app) *cobra.Command {
	var cf connFlags
	var hf hostFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify HOST --target T --host-identity KEY [--json]",
		Short: "Check that a booted host decrypted every declared secret as declared",
		Long: `Check, on the running HOST, every secret its configuration declares: it exists,
resolves into /run/agenix.d on ramfs or tmpfs, has the declared mode, owner and group,
and its sha256 (computed on the host; the plaintext never crosses the wire) equals that
of the local decryption with --host-identity. Exit 1 on any mismatch.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hf.identity == "" {
				return usagef("--host-identity is required to know what each secret should contain")
			}
			ctx := cmd.Context()
			hc, err := hf.load(ctx, a, args)
			if err != nil {
				return err
			}
			c, err := cf.dial(ctx, a)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := provision.Verify(remote.WithPhase(ctx, provision.PhaseVerify), c, hc.spec, hc.decrypted)
			if err != nil {
				return err
			}
			if asJSON {
				if err := a.printJSON(rep); err != nil {
					return err
				}
			} else {
				printReport(a.stdout, rep)
			}
			if !rep.OK {
				return errSilentFail
			}
			return nil
		},
	}
	cf.add(cmd.Flags())
	hf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// scopedForwarder builds the agent the installer gets while it fetches the
// secrets: backed by the operator's ssh-agent, listing and signing only
// with the --forward-key keys.
func scopedForwarder(a *app, opts agentfwd.Options) (func(*remote.Client) provision.Forwarder, func(), error) {
	cfg, err := opts.Config(time.Now())
	if err != nil {
		return nil, nil, usageError{err}
	}
	cfg.Log = a.log
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no ssh-agent to forward the deploy key from (SSH_AUTH_SOCK is not set)\nhint: ssh-add the deploy key, or fetch the secrets here with --secrets-fetch local")
	}
	backing, conn, err := agentfwd.DialAgent(sock)
	if err != nil {
		return nil, nil, err
	}
	ag, err := agentfwd.New(backing, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	// An allowed key the agent does not hold would only fail on the
	// installer, later: say so now, before connecting.
	// (An agent that cannot list its keys is left to fail on the
	// installer, with its own error.)
	if keys, err := backing.List(); err == nil && len(cfg.Allow) > 0 {
		held := map[string]bool{}
		for _, k := range keys {
			held[ssh.FingerprintSHA256(k)] = true
		}
		var missing []string
		for _, fp := range cfg.Allow {
			if !held[fp] {
				missing = append(missing, fp)
			}
		}
		if len(missing) == len(cfg.Allow) {
			conn.Close()
			return nil, nil, fmt.Errorf("your ssh-agent (SSH_AUTH_SOCK) holds none of the keys --forward-key allows: %s\nhint: ssh-add the secrets repository's deploy key, or fetch the secrets here with --secrets-fetch local", strings.Join(missing, ", "))
		}
	}
	return func(c *remote.Client) provision.Forwarder {
		return scopedForwarding{c.Forward(ag.For("fetching the secrets"), "fetch secrets"), ag}
	}, func() { conn.Close() }, nil
}

// scopedForwarding is one forwarding with its agent's record.
type scopedForwarding struct {
	*remote.Forwarding
	ag *agentfwd.Agent
}

func (s scopedForwarding) Summary() string { return s.ag.Summary() }
