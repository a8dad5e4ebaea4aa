package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fleetnix/fleet/facts"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// secretsMirror is where preflight fetches the secrets repository on the
// installer (RAM; ciphertext only), so stage needs no network or agent.
const secretsMirror = recordDir + "/secrets.git"

// gitKnownHosts holds the secrets server's host key for git on the installer.
const gitKnownHosts = recordDir + "/git_known_hosts"

// preflight checks everything it can before anything is touched.
func (in *run) preflight(ctx context.Context) error {
	if in.o.EvalOnInstaller {
		if err := in.evalOnInstaller(ctx); err != nil {
			return err
		}
	}
	o := in.o
	f, err := facts.Gather(ctx, in.c)
	if err != nil {
		return err
	}
	if !f.Installer && !o.Force {
		return fmt.Errorf("%s is not a NixOS installer: %s\nhint: boot it from the NixOS installer image, or pass --force to install from this system anyway", in.c.Host(), f.InstallerReason)
	}
	if o.Spec.System != "" && f.System != o.Spec.System {
		return fmt.Errorf("%s is %s but host %s is built for %s\nhint: boot an installer of the host's architecture, or fix nixpkgs.hostPlatform", in.c.Host(), f.System, o.Spec.Name, o.Spec.System)
	}
	// Once disko is done (a resumed run), the layout's own mounts and
	// holders are expected: only the disks' presence is checked.
	if o.Disks != nil && contains(o.Phases, PhaseDisko) {
		laidOut := in.done(PhaseDisko)
		for _, dev := range o.Disks.Devices() {
			d, ok := f.Disk(dev)
			if !ok {
				return fmt.Errorf("disk %s not found on %s\nhint: fleet facts --target %s lists its disks; point the layout at one with --device NAME=PATH", dev, in.c.Host(), o.Target)
			}
			if laidOut {
				continue
			}
			if d.Root {
				return fmt.Errorf("disk %s holds the installer's running root\nhint: pick another disk with --device NAME=PATH", dev)
			}
			if !d.Free() {
				return fmt.Errorf("disk %s is in use: %s\nhint: unmount it (fleet disko apply --mode unmount) or pick another disk", dev, strings.Join(d.InUse, ", "))
			}
			if ds, ok := o.Disks.(DiskSizer); ok {
				if need := ds.MinSize(dev); d.SizeBytes < need {
					return fmt.Errorf("disk %s is too small: %s, and host %s's layout needs at least %s\nhint: point the layout at a bigger disk with --device NAME=PATH, or shrink its fixed-size partitions", dev, facts.HumanBytes(d.SizeBytes), o.Spec.Name, facts.HumanBytes(need))
				}
			}
		}
	}
	if contains(o.Phases, PhaseInstall) && !f.HasNixOSInst {
		return fmt.Errorf("nixos-install not found on %s\nhint: boot the NixOS installer image", in.c.Host())
	}
	if contains(o.Phases, PhaseIdentity) || contains(o.Phases, PhaseVerify) {
		if err := in.checkIdentity(); err != nil {
			return err
		}
	}
	// The baseline is what the installer held before this install began:
	// a resumed run keeps the one it recorded then.
	if in.base.Keys == nil {
		if in.base, err = in.takeBaseline(ctx); err != nil {
			return err
		}
	}
	if contains(o.Phases, PhaseStage) && !in.done(PhaseStage) && o.SecretsFetch == "installer" && !in.fetched {
		if err := in.fetchSecrets(ctx); err != nil {
			return err
		}
	}
	return nil
}

// DiskSizer is a Disks that knows the smallest disk each device's layout
// fits on; preflight refuses smaller disks before anything is written.
type DiskSizer interface {
	MinSize(dev string) int64
}

// checkIdentity: the identity exists, is readable, and decrypted every
// declared secret locally (the caller's decryption filled o.Decrypted).
func (in *run) checkIdentity() error {
	o := in.o
	if o.Identity == "" {
		return errors.New("no decryption identity\nhint: pass -I/--identity-file with the key the host decrypts its secrets with")
	}
	if _, err := os.Stat(o.Identity); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	var missing []string
	for _, n := range o.Spec.SecretNames() {
		if _, ok := o.Decrypted[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("identity %s cannot decrypt %s\nhint: rekey them to its public key (fleet secrets rekey) or use the right identity", o.Identity, strings.Join(missing, ", "))
	}
	return nil
}

// secretsInput returns the locked secrets input, or ok=false when the
// flake has none.
func (in *run) secretsInput() (flake.Input, bool, error) {
	if in.o.Lock == nil || (len(in.o.Spec.Secrets) == 0 && !in.evaluating) {
		return flake.Input{}, false, nil
	}
	sin, err := in.o.Lock.Input(in.o.Spec.SecretsInput)
	if errors.Is(err, flake.ErrNoInput) {
		return flake.Input{}, false, fmt.Errorf("the flake has no input %q for the secrets: %w", in.o.Spec.SecretsInput, err)
	}
	if err != nil {
		return flake.Input{}, false, err
	}
	if sin.Locked.CloneURL() == "" || sin.Locked.Rev == "" {
		return flake.Input{}, false, fmt.Errorf("secrets input %q is a %s input; fleet fetches git inputs locked to a rev", sin.Name, sin.Locked.Type)
	}
	return sin, true, nil
}

// fetchSecrets fetches the secrets repository on the installer through
// the scoped forwarded agent into RAM, checks the locked rev is there, and
// revokes the forwarding. Nothing is written to disk yet.
func (in *run) fetchSecrets(ctx context.Context) error {
	sin, ok, err := in.secretsInput()
	if err != nil || !ok {
		return err
	}
	url := sin.Locked.CloneURL()
	if err := in.uploadGitKnownHosts(ctx, url); err != nil {
		return err
	}
	// On every exit the script removes the forwarded agent's socket
	// directory: sshd keeps one socket per connection for the
	// connection's life, and nothing may reach it after the fetch.
	script := `set -eu
url=$1 rev=$2 dir=$3 kh=$4
case "${SSH_AUTH_SOCK:-}" in */ssh-*/agent.*) trap 'rm -rf -- "${SSH_AUTH_SOCK%/*}"' EXIT ;; esac
rm -rf "$dir"; mkdir -p -m 0700 "$(dirname "$dir")"
export GIT_SSH_COMMAND="ssh -o UserKnownHostsFile=$kh -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentityFile=none"
export GIT_TERMINAL_PROMPT=0
git init -q --bare "$dir"
git -C "$dir" fetch -q "$url" '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*' || { rm -rf "$dir"; exit 3; }
if ! git -C "$dir" cat-file -e "$rev^{commit}" 2>/dev/null; then
  git -C "$dir" fetch -q "$url" "$rev" 2>/dev/null || true
fi
git -C "$dir" cat-file -e "$rev^{commit}" 2>/dev/null || { rm -rf "$dir"; echo "rev $rev is not in $url" >&2; exit 4; }
`
	cmd := remote.Cmd{Args: []string{"sh", "-c", script, "fleet-fetch", url, sin.Locked.Rev, secretsMirror, gitKnownHosts}, Label: "fetch " + url}
	var hook remote.SessionHook
	var fwd Forwarder
	if in.o.Forward != nil && !in.o.DryRun {
		fwd = in.o.Forward(in.c)
		hook = fwd.Hook()
	}
	var res *remote.Result
	if in.o.DryRun {
		res, err = in.r.Run(ctx, cmd)
	} else {
		res, err = in.c.RunWith(ctx, cmd, hook)
	}
	if fwd != nil {
		fwd.Revoke()
		in.sum.Forwarding = fwd.Summary()
	}
	in.fetched = err == nil
	_ = res
	if err != nil {
		var ee *remote.ExitError
		if errors.As(err, &ee) {
			switch {
			case ee.Code == 4:
				return fmt.Errorf("the secrets repository %s has no commit %s (locked in flake.lock)\nhint: push it, or update the lock with nix flake update %s", url, sin.Locked.Rev, sin.Name)
			case ee.StderrLine("Permission denied") != "":
				return fmt.Errorf("the installer cannot fetch %s through the forwarded agent: the server accepted none of the keys it offered (%s)\nhint: load the deploy key into your ssh-agent and allow it with --forward-key", url, ee.StderrLine("Permission denied"))
			case ee.StderrLine("Host key verification failed") != "":
				return fmt.Errorf("the secrets server's host key does not match your known_hosts: %s", strings.Join(ee.Stderr, "; "))
			}
		}
		return fmt.Errorf("fetch the secrets repository on the installer: %w", err)
	}
	return nil
}

// uploadGitKnownHosts copies the secrets server's known_hosts entries from
// the operator's known_hosts to the installer (public keys only), so git
// there checks the server's key strictly.
func (in *run) uploadGitKnownHosts(ctx context.Context, url string) error {
	host, port := gitHostPort(url)
	if host == "" {
		return nil // not ssh: no host key to check
	}
	name := host
	if port != "" && port != "22" {
		name = "[" + host + "]:" + port
	}
	var lines []string
	files := in.o.Dial.HostKey.KnownHosts
	if files == nil {
		home, _ := os.UserHomeDir()
		files = []string{home + "/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		res, err := in.o.LocalRunner.Run(ctx, remote.Cmd{Args: []string{"ssh-keygen", "-F", name, "-f", f}})
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(res.Stdout), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("the secrets server %s is not in your known_hosts, so the installer could not check its key\nhint: connect to it once (ssh -p %s %s) or add its key with ssh-keyscan after checking it", name, orDefault(port, "22"), host)
	}
	b := strings.Join(lines, "\n") + "\n"
	if _, err := in.r.Run(ctx, remote.Cmd{Args: []string{"mkdir", "-p", "-m", "0700", recordDir}}); err != nil {
		return err
	}
	return remote.Upload(ctx, in.r, strings.NewReader(b), int64(len(b)), gitKnownHosts, remote.UploadOptions{Mode: 0o644})
}

// gitHostPort returns the host and port of an ssh git URL
// (ssh://user@host:port/path or user@host:path), or "" for others.
func gitHostPort(url string) (string, string) {
	if rest, ok := strings.CutPrefix(url, "ssh://"); ok {
		hostpart, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(hostpart, "@"); i >= 0 {
			hostpart = hostpart[i+1:]
		}
		t, err := remote.ParseTarget(hostpart)
		if err != nil {
			return "", ""
		}
		if t.Port == 0 {
			return t.Host, ""
		}
		return t.Host, fmt.Sprint(t.Port)
	}
	if strings.Contains(url, "://") {
		return "", ""
	}
	if at := strings.Index(url, "@"); at >= 0 {
		if h, _, ok := strings.Cut(url[at+1:], ":"); ok {
			return h, ""
		}
	}
	return "", ""
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
