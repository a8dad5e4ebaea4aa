package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
)

// secretsMirror is where preflight fetches the secrets repository on the
// installer (RAM; ciphertext only), so stage needs no network or agent.
const secretsMirror = recordDir + "/secrets.git"

// gitKnownHosts holds the secrets server's host key for git on the installer.
const gitKnownHosts = recordDir + "/git_known_hosts"

// secretsInput returns the locked input the host's .age files are in, or
// ok=false when there is none to fetch: they are all in the flake itself
// (or there are none).
func (in *job) secretsInput() (flake.Input, bool, error) {
	if in.lock == nil || !in.needsFetch() {
		return flake.Input{}, false, nil
	}
	sin, err := in.lock.Input(in.o.Spec.SecretsInput)
	if errors.Is(err, flake.ErrNoInput) {
		return flake.Input{}, false, fmt.Errorf("the flake has no input %q for the secrets: %w\nhint: name the input that holds the .age files with --secrets-input (self: the flake itself)", in.o.Spec.SecretsInput, err)
	}
	if err != nil {
		return flake.Input{}, false, err
	}
	if sin.Locked.CloneURL() == "" || sin.Locked.Rev == "" {
		return flake.Input{}, false, fmt.Errorf("secrets input %q is a %s input; fleet fetches git inputs locked to a rev", sin.Name, sin.Locked.Type)
	}
	return sin, true, nil
}

// needsFetch: the installer fetches an input for the .age files. Before
// the installer has evaluated the spec (evaluating), that is the input
// --secrets-input names (prepare picks a default).
func (in *job) needsFetch() bool {
	s := in.o.Spec
	if in.evaluating || in.specPending {
		return s.SecretsInput != "" && s.SecretsInput != SelfInput
	}
	return s.needsInput()
}

// fetchScript fetches the secrets repository (url) into a bare mirror
// in RAM (dir) through the forwarded agent, with git checking the
// server's key against kh, and checks the locked rev is there.
//
// On every exit it removes the forwarded agent's socket: sshd keeps one
// per connection for the connection's life, and nothing may reach it
// after the fetch. OpenSSH before 10.1 makes it in a directory of its own
// (/tmp/ssh-XXXXXXXXXX/agent.PID), removed with it; from 10.1 on it is
// ~/.ssh/agent/s.HASH.sshd.RANDOM in the login user's home
// (misc-agent.c), where sshd makes ~/.ssh and ~/.ssh/agent when they are
// missing: those go too, unless keep names them ("ssh", "agent": the
// baseline had them).
const fetchScript = `set -eu
url=$1 rev=$2 dir=$3 kh=$4 keep=$5 sock=${SSH_AUTH_SOCK:-}
cleanup() {
  case $sock in
  */ssh-*/agent.*) rm -rf -- "${sock%/*}" ;;
  */.ssh/agent/s.*.sshd.*)
    rm -f -- "$sock"
    case " $keep " in *" agent "*) return 0 ;; esac
    rmdir -- "${sock%/*}" 2>/dev/null || return 0
    case " $keep " in *" ssh "*) return 0 ;; esac
    rmdir -- "${sock%/*/*}" 2>/dev/null || true ;;
  esac
}
trap cleanup EXIT
printf 'socket %s\n' "$sock"
rm -rf -- "$dir"; mkdir -p -m 0700 -- "$(dirname -- "$dir")"
export GIT_SSH_COMMAND="ssh -o UserKnownHostsFile=$kh -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentityFile=none"
export GIT_TERMINAL_PROMPT=0 GIT_ALLOW_PROTOCOL=` + gitProtocols + `
git init -q --bare -- "$dir"
git -C "$dir" fetch -q -- "$url" '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*' || { rm -rf -- "$dir"; exit 3; }
if ! git -C "$dir" cat-file -e --end-of-options "$rev^{commit}" 2>/dev/null; then
  git -C "$dir" fetch -q -- "$url" "$rev" 2>/dev/null || true
fi
git -C "$dir" cat-file -e --end-of-options "$rev^{commit}" 2>/dev/null || { rm -rf -- "$dir"; echo "rev $rev is not in $url" >&2; exit 4; }
`

// fetchSecrets fetches the secrets repository on the installer through
// the scoped forwarded agent into RAM, checks the locked rev is there, and
// revokes the forwarding. Nothing is written to disk yet.
func (in *job) fetchSecrets(ctx context.Context) error {
	sin, ok, err := in.secretsInput()
	if err != nil || !ok {
		return err
	}
	url := sin.Locked.CloneURL()
	if err := in.uploadGitKnownHosts(ctx, url); err != nil {
		return err
	}
	var keep []string
	for _, d := range in.base.Dirs {
		switch {
		case strings.HasSuffix(d, "/.ssh"):
			keep = append(keep, "ssh")
		case strings.HasSuffix(d, "/.ssh/agent"):
			keep = append(keep, "agent")
		}
	}
	cmd := remote.Cmd{Args: []string{"sh", "-c", fetchScript, "fleet-fetch", url, sin.Locked.Rev, secretsMirror, gitKnownHosts, strings.Join(keep, " ")}, Label: "fetch " + url}
	if in.o.DryRun {
		_, err = in.r.Run(ctx, cmd)
		return err
	}
	var hook remote.SessionHook
	var fw *remote.Forwarding
	if in.agent != nil {
		fw = in.agent.forward(in.c)
		hook = fw.Hook()
	}
	res, err := in.c.RunWith(ctx, cmd, hook)
	if res != nil {
		if sock, ok := strings.CutPrefix(strings.SplitN(string(res.Stdout), "\n", 2)[0], "socket "); ok && cleanAbs(sock) {
			in.agentSock = sock
		}
	}
	if fw != nil {
		fw.Revoke()
		in.sum.ForwardPolicy, in.sum.Forwarding = in.agent.ag.Policy(), in.agent.ag.Summary()
	}
	in.fetched = err == nil
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
func (in *job) uploadGitKnownHosts(ctx context.Context, url string) error {
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
