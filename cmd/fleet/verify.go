package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fleetnix/fleet/provision"
	"github.com/fleetnix/fleet/remote"
)

func init() { register(newVerifyCmd) }

// verifyFlags are fleet verify's own flags.
type verifyFlags struct {
	spec         specFlags
	identities   []string // [HOST=]FILE
	secretsDirs  []string
	secretsInput string
	all          bool
	parallel     int
	asJSON       bool
}

func newVerifyCmd(a *app) *cobra.Command {
	var cf connFlags
	var vf verifyFlags
	cmd := &cobra.Command{
		Use: `verify HOST --target T --host-identity KEY [--json]
  fleet verify --all [HOST...] [--target HOST=T]... --host-identity [HOST=]KEY... [-j N] [--json]`,
		Short: "Check that booted hosts decrypted every declared secret as declared",
		Long: `Check, on the running HOST, every secret its configuration declares, where
agenix puts it (age.secretsDir, age.secretsMountPoint, each secret's name, path and
symlink): it exists; a symlinked one resolves to its name in the current generation,
on ramfs or tmpfs; it has the declared mode, owner and group; and its sha256
(computed on the host; the plaintext never crosses the wire) equals that of the
local decryption with --host-identity. Exit 1 on any mismatch.

With --all, every host of the flake's nixosConfigurations (or the HOSTs named) is
checked, --parallel at a time, from one nix eval: one table with a row per host
(reachable, host key, secrets ok of total, what failed), or --json; exit 1 if any
host fails. Each host is reached by its name (an alias in ~/.ssh/config, or a DNS
name) unless --target HOST=T says where it is; its key is checked against
known_hosts, or --host-key HOST=SHA256:... pins it. --host-identity FILE is tried
for every host (an identity every .age file is encrypted to, such as the
operator's), --host-identity HOST=FILE for one; any identity that decrypts a file
will do, since the host's own copy is compared by sha256.`,
		Example: `  fleet verify nas --flake ./homelab --target root@nas --host-identity ~/keys/nas_host
  fleet verify --all --flake ./homelab --host-identity ~/.config/fleet/operator.age
  fleet verify --all nas vault --target vault=root@10.0.0.7 --host-key vault=SHA256:uQ2k... \
      --host-identity nas=~/keys/nas_host --host-identity vault=~/keys/vault_host --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if vf.all {
				return verifyFleet(cmd.Context(), a, &cf, &vf, args)
			}
			if len(args) > 1 {
				return usagef("fleet verify checks one HOST; %d were given\nhint: fleet verify --all %s", len(args), strings.Join(args, " "))
			}
			return verifyOne(cmd.Context(), a, &cf, &vf, args)
		},
	}
	cf.addPerHost(cmd.Flags())
	vf.spec.add(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&vf.identities, "host-identity", nil, "an identity that decrypts the secrets locally: FILE for every host, HOST=FILE for one (repeatable)")
	f.StringArrayVar(&vf.secretsDirs, "secrets-dir", nil, "a local clone of a secrets input, matched by the locked rev it has (repeatable; default: fetch the locked URL)")
	addSecretsInput(cmd, &vf.secretsInput)
	f.BoolVar(&vf.all, "all", false, "check every host of the flake (or the HOSTs named), in parallel")
	f.IntVarP(&vf.parallel, "parallel", "j", 16, "with --all, how many hosts to check at once")
	f.BoolVar(&vf.asJSON, "json", false, "print as JSON")
	return cmd
}

// splitIdentities reads --host-identity values: HOST=FILE for one host
// (a HOST that looks like a host name; hosts, when known, must have it),
// FILE for every host.
func splitIdentities(values []string) (common []string, per map[string][]string) {
	per = map[string][]string{}
	for _, v := range values {
		if h, f, ok := strings.Cut(v, "="); ok && hostAttr.MatchString(h) && f != "" {
			per[h] = append(per[h], f)
			continue
		}
		common = append(common, v)
	}
	return common, per
}

// verifyOne is fleet verify HOST.
func verifyOne(ctx context.Context, a *app, cf *connFlags, vf *verifyFlags, args []string) error {
	src, err := vf.spec.source(args)
	if err != nil {
		return err
	}
	if len(vf.secretsDirs) > 1 {
		return usagef("--secrets-dir: one clone for one host; %d were given", len(vf.secretsDirs))
	}
	if len(vf.secretsDirs) == 1 {
		src.SecretsDir = vf.secretsDirs[0]
	}
	src.SecretsInput = vf.secretsInput
	one := []string{src.Name}
	if len(cf.targets) > 1 || len(cf.hostKeys) > 1 {
		return usagef("--target and --host-key are given once for one host\nhint: fleet verify --all checks several")
	}
	targets, err := perHost("target", cf.targets, one, src.Name)
	if err != nil {
		return err
	}
	keys, err := perHost("host-key", cf.hostKeys, one, src.Name)
	if err != nil {
		return err
	}
	cf.target, cf.hostKey = targets[src.Name], keys[src.Name]
	common, per := splitIdentities(vf.identities)
	for h := range per {
		if h != src.Name {
			return usagef("--host-identity %s=...: this checks host %s only", h, src.Name)
		}
	}
	t, dial, err := cf.resolve(a)
	if err != nil {
		return err
	}
	pass := &passphraseOnce{ask: askPassphrase}
	defer pass.forget()
	rep, err := provision.VerifyHost(ctx, provision.VerifyOptions{Host: src, Identities: append(common, per[src.Name]...),
		Passphrase: pass.get, Target: t, Dial: dial, Log: a.log})
	if err != nil {
		return err
	}
	if vf.asJSON {
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
}

// verifyFleet is fleet verify --all.
func verifyFleet(ctx context.Context, a *app, cf *connFlags, vf *verifyFlags, hosts []string) error {
	switch {
	case vf.spec.hostSpec != "":
		return usagef("--host-spec describes one host; --all evaluates the flake's hosts")
	case strings.Contains(vf.spec.flake, "#"):
		return usagef("--all checks the hosts of --flake %s: name them as arguments, not after '#'", vf.spec.flake)
	case vf.parallel < 1:
		return usagef("--parallel %d: want 1 or more", vf.parallel)
	}
	for _, h := range hosts {
		if !hostAttr.MatchString(h) {
			return usagef("host %q: want a nixosConfigurations name (letters, digits, _ . -)", h)
		}
	}
	var known []string // the hosts, when named
	if len(hosts) > 0 {
		known = hosts
	}
	targetArgs, err := perHost("target", cf.targets, known, "")
	if err != nil {
		return err
	}
	keys, err := perHost("host-key", cf.hostKeys, known, "")
	if err != nil {
		return err
	}
	targets := map[string]remote.Target{}
	for h, v := range targetArgs {
		if targets[h], err = parseTarget(v); err != nil {
			return err
		}
	}
	common, per := splitIdentities(vf.identities)
	for h := range per {
		if known != nil && !slices.Contains(known, h) {
			return usagef("--host-identity %s=...: no host %s is checked\nhint: the hosts are %s", h, h, strings.Join(known, ", "))
		}
	}
	pass := &passphraseOnce{ask: askPassphrase}
	pw := &passphraseOnce{ask: func(key string) ([]byte, error) {
		user, host, _ := strings.Cut(key, "@")
		return askPassword(user, host)
	}}
	defer func() { pass.forget(); pw.forget() }()
	dial, err := cf.options(a, pass.get, func(user, host string) ([]byte, error) { return pw.get(user + "@" + host) })
	if err != nil {
		return err
	}
	if cf.insecure {
		cf.warnInsecure(a, remote.Target{Host: "every host"})
	}
	dir := vf.spec.flake
	if dir == "" {
		dir = "."
	}
	res, err := provision.VerifyFleet(ctx, provision.FleetOptions{
		FlakeDir: dir, Hosts: hosts, SecretsDirs: vf.secretsDirs, SecretsInput: vf.secretsInput,
		Targets: targets, HostKeys: keys, Identities: common, HostIdentities: per, Passphrase: pass.get,
		Dial: dial, Parallel: vf.parallel, Log: a.log,
	})
	if err != nil {
		return err
	}
	if vf.asJSON {
		if err := a.printJSON(res); err != nil {
			return err
		}
	} else {
		printFleet(a.stdout, res)
	}
	var failed []string
	for _, r := range res {
		if !r.OK {
			failed = append(failed, r.Host)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("verify failed on %d of %d hosts: %s", len(failed), len(res), strings.Join(failed, ", "))
	}
	return nil
}

// printFleet is fleet verify --all's table: a row per host.
func printFleet(w io.Writer, res []provision.HostResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tTARGET\tREACHABLE\tHOST KEY\tSECRETS\tFAILED")
	for _, r := range res {
		reach := "no"
		if r.Reachable {
			reach = "yes"
		}
		secrets := fmt.Sprintf("%d/%d", r.SecretsOK, r.SecretsTotal)
		if r.Report == nil && r.SecretsTotal > 0 {
			secrets = fmt.Sprintf("-/%d", r.SecretsTotal)
		}
		failed := "-"
		if len(r.Failed) > 0 {
			failed = strings.Join(r.Failed, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, r.Target, reach, dash(r.HostKey), secrets, failed)
	}
	tw.Flush()
}

// printReport is one host's table: a row per secret and identity.
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
