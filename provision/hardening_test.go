package provision

// The hardening cases of #14 that concern the pipeline, each against the
// real parts (sshd as the installer, ssh-agent, git, a git server behind
// git-shell). Each was first a reproducer that failed on the code before
// its fix; it now says what must hold.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/agentfwd"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// watchInstaller restarts the fixture's installer (sshd) with bin first on
// its sessions' PATH and FLEET_TEST_OUT=out in their environment: fakes
// in bin stand in for one of the installer's programs, or watch it.
func (f *pipelineFixture) watchInstaller(t *testing.T, fakes map[string]string) (out string) {
	t.Helper()
	bin, out := t.TempDir(), t.TempDir()
	for name, script := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.srv = sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line},
		Config: []string{"SetEnv PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin FLEET_TEST_OUT=" + out}})
	return out
}

// lockToGitServer locks the fixture's flake to the git server's commit,
// with the narHash of its tree.
func (f *pipelineFixture) lockToGitServer(t *testing.T, gs *sshtest.GitServer) {
	t.Helper()
	clone := filepath.Join(t.TempDir(), "c")
	nixtest.Run(t, "/", nil, "git", "clone", "-q", gs.Repo, clone)
	nar, err := flake.NarHash(clone)
	if err != nil {
		t.Fatal(err)
	}
	f.writeLock(t, fmt.Sprintf(`{"type": "git", "url": %q, "rev": %q, "narHash": %q}`, gs.URL, gs.Commit, nar))
}

// writeLock writes the flake's lock with its secrets input locked as
// locked (a JSON object), under the input name "secrets".
func (f *pipelineFixture) writeLock(t *testing.T, locked string) {
	t.Helper()
	lock := `{"nodes": {"root": {"inputs": {"secrets": "secrets"}}, "secrets": {"flake": false, "locked": ` + locked + `}}, "root": "root", "version": 7}`
	if err := os.WriteFile(filepath.Join(f.flakeDir, "flake.lock"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	nixtest.Git(t, f.flakeDir, "add", "flake.lock")
}

// listAgentKeys is a fake ssh for the installer: it records what the
// forwarded agent lists (ssh-add -l) as git connects, then is ssh.
const listAgentKeys = `#!/bin/sh
ssh-add -l >> "$FLEET_TEST_OUT/listed" 2>&1
exec /usr/bin/ssh "$@"
`

// TestForwardedAgentScopedByDefault (#14 item 2): the operator's agent
// holds the deploy key and a personal key. With no --forward-key and no
// IdentityFile for the secrets server, nothing is forwarded: the install
// is refused before connecting. With the IdentityFile ~/.ssh/config gives
// the server, the installer's agent lists that key alone, signs once, and
// the summary says what was allowed and within which limits.
func TestForwardedAgentScopedByDefault(t *testing.T) {
	deploy := sshtest.NewKey(t, "ed25519", "", "deploy")
	personal := sshtest.NewKey(t, "ed25519", "", "personal")
	gs := sshtest.StartGitServer(t, deploy)
	f := newPipelineFixture(t)
	f.lockToGitServer(t, gs)
	out := f.watchInstaller(t, map[string]string{"ssh": listAgentKeys})
	op := sshtest.StartAgent(t, deploy, personal)

	o := f.options(t, PhasePreflight, PhaseStage)
	o.Dial.HostKey.KnownHosts = []string{gs.WriteKnownHosts(t)}
	o.Forward = agentfwd.Options{Socket: op.Socket}
	_, err := Install(context.Background(), o)
	want := "no key allowed through the forwarded agent: neither --forward-key nor an IdentityFile for " + gs.Host + " in ssh_config names the key to forward\n"
	if !errors.Is(err, agentfwd.ErrNoAllowlist) || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("no allowlist: got %v, want %q...", err, want)
	}
	if n := f.srv.AcceptedConnections(); n != 0 {
		t.Fatalf("the installer was connected to %d times", n)
	}

	cfgFile := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfgFile, []byte("Host "+gs.Host+"\n  IdentityFile "+deploy.Path+"\n"), 0o600)
	if o.Dial.SSHConfig, err = remote.LoadSSHConfig(cfgFile); err != nil {
		t.Fatal(err)
	}
	sum, err := Install(context.Background(), o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	listed, _ := os.ReadFile(filepath.Join(out, "listed"))
	if lines := strings.Split(strings.TrimSpace(string(listed)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], deploy.Fingerprint()) {
		t.Fatalf("the installer's agent listed:\n%s\nwant the deploy key alone", listed)
	}
	if want := "allowed key " + deploy.Fingerprint() + " (from IdentityFile " + deploy.Path + " for " + gs.Host + " in ssh_config), at most 4 signatures within 5m0s of forwarding"; sum.ForwardPolicy != want {
		t.Errorf("policy %q\nwant %q", sum.ForwardPolicy, want)
	}
	if want := "the installer used key " + deploy.Fingerprint() + " 1 time while fetching the secrets"; sum.Forwarding != want {
		t.Errorf("forwarding %q\nwant %q", sum.Forwarding, want)
	}
}

// TestLockValueIsNeverAGitOption (#14 item 3): a flake.lock whose secrets
// rev or url is a git option (--upload-pack runs a command) is refused
// when the lock is read: before connecting, and the command never runs.
func TestLockValueIsNeverAGitOption(t *testing.T) {
	base := newPipelineFixture(t)
	in, _ := base.lock.Input("secrets")
	for _, c := range []struct {
		field string
		want  string // the refusal, after the lock's path
	}{
		{field: "rev", want: `: node "secrets": flake lock value refused: rev "--upload-pack=touch MARKER;:" is not a commit hash (40 or 64 hex digits)`},
		{field: "url", want: `: node "secrets": flake lock value refused: url "--upload-pack=touch MARKER;:" starts with -`},
	} {
		t.Run(c.field, func(t *testing.T) {
			f := base.fork(t)
			marker := filepath.Join(t.TempDir(), "pwned")
			payload := "--upload-pack=touch " + marker + ";:"
			url, rev := in.Locked.URL, in.Locked.Rev
			if c.field == "rev" {
				rev = payload
			} else {
				url = payload
			}
			f.writeLock(t, fmt.Sprintf(`{"type": "git", "url": %q, "rev": %q}`, url, rev))
			_, err := Install(context.Background(), f.options(t, PhasePreflight, PhaseStage))
			want := "read flake lock " + filepath.Join(f.flakeDir, "flake.lock") + strings.ReplaceAll(c.want, "MARKER", marker) + "\nhint: "
			if !errors.Is(err, flake.ErrBadLock) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("got %v\nwant %q...", err, want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the lock's value ran a command")
			}
			if n := f.srv.AcceptedConnections(); n != 0 {
				t.Fatalf("the installer was connected to %d times", n)
			}
		})
	}
}

// TestHostPathsStayUnderRoot (#14 item 6): an identity path, an
// --identity-dest or a secrets input name that would put a key outside
// the new root, or rm -rf a directory there, is refused before anything
// is dialed; nothing outside the root changes.
func TestHostPathsStayUnderRoot(t *testing.T) {
	base := newPipelineFixture(t)
	in, _ := base.lock.Input("secrets")
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "precious"), []byte("keep me"), 0o644)
	climb := strings.Repeat("/..", 12) + outside
	for _, c := range []struct {
		name  string
		setup func(f *pipelineFixture, o *Options)
		want  string
		typ   error // what the error is
	}{{
		name: "identity path",
		setup: func(f *pipelineFixture, o *Options) {
			spec := *f.spec
			spec.IdentityPaths = []string{climb + "/key"}
			o.Spec = &spec
		},
		want: `invalid host spec: identityPaths[0] "` + climb + `/key": want a clean absolute path (no . or .. elements)`,
		typ:  ErrBadSpec,
	}, {
		name:  "identity dest",
		setup: func(f *pipelineFixture, o *Options) { o.IdentityDest = climb + "/key" },
		want:  `--identity-dest "` + climb + `/key": want a clean absolute path on the host (no . or .. elements)`,
		typ:   &OptionError{},
	}, {
		name: "secrets input name",
		setup: func(f *pipelineFixture, o *Options) {
			name := strings.TrimPrefix(climb, "/")
			lock := fmt.Sprintf(`{"nodes": {"root": {"inputs": {%q: "secrets"}}, "secrets": {"flake": false, "locked": {"type": "git", "url": %q, "rev": %q}}}, "root": "root", "version": 7}`, name, in.Locked.URL, in.Locked.Rev)
			os.WriteFile(filepath.Join(f.flakeDir, "flake.lock"), []byte(lock), 0o644)
			os.MkdirAll(filepath.Join(f.root, inputsDir), 0o755) // as an earlier run left it
			spec := *f.spec
			spec.SecretsInput = name
			o.Spec = &spec
		},
		want: `invalid host spec: secretsInput "` + strings.TrimPrefix(climb, "/") + `": want a flake input name (letters, digits, _ and -)`,
		typ:  ErrBadSpec,
	}} {
		t.Run(c.name, func(t *testing.T) {
			f := base.fork(t)
			o := f.options(t, PhasePreflight, PhaseStage, PhaseIdentity)
			c.setup(f, &o)
			_, err := Install(context.Background(), o)
			var oe *OptionError
			if err == nil || err.Error() != c.want || (c.typ == ErrBadSpec && !errors.Is(err, ErrBadSpec)) || (c.typ != ErrBadSpec && !errors.As(err, &oe)) {
				t.Fatalf("got %v\nwant %s (%T)", err, c.want, c.typ)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Fatalf("outside the root: %v", ents)
			}
			if n := f.srv.AcceptedConnections(); n != 0 {
				t.Fatalf("the installer was connected to %d times", n)
			}
		})
	}
}

// fakeNixosInstall stands in for nixos-install on the installer: it keeps
// the NIX_CONFIG it was given, looks for the token on every process's
// command line while it runs, says what nix says when it fetches, and
// fails quoting the token, as a nix error might.
const fakeNixosInstall = `#!/bin/sh
printf '%s' "$NIX_CONFIG" > "$FLEET_TEST_OUT/nix_config"
grep -l -a -F -f "$FLEET_TEST_OUT/token" /proc/[0-9]*/cmdline > "$FLEET_TEST_OUT/ps" 2>/dev/null
echo "these 2 paths will be fetched (0.01 MiB download, 0.02 MiB unpacked):"
echo "copying path '/nix/store/aaaa-a' from 'https://cache.nixos.org'..."
echo "copying path '/nix/store/bbbb-b' from 'https://cache.nixos.org'..."
echo "error: unable to download with token $(cat "$FLEET_TEST_OUT/token")" >&2
exit 1
`

// TestNixOptionsStayOffCommandLines (#14 item 10): a --option value (an
// access token) reaches nixos-install in NIX_CONFIG, and appears on no
// process's command line on the installer, in no dry-run listing, log
// line or error, even when nix prints it. nix's progress lines become the
// install phase's steps.
func TestNixOptionsStayOffCommandLines(t *testing.T) {
	const token = "ghp_0123456789abcdefTOKEN"
	f := newPipelineFixture(t)
	out := f.watchInstaller(t, map[string]string{"nixos-install": fakeNixosInstall})
	os.WriteFile(filepath.Join(out, "token"), []byte(token+"\n"), 0o644)
	o := f.options(t, PhasePreflight, PhaseStage, PhaseInstall)
	o.NixOptions = []string{"access-tokens=github.com=" + token, "max-jobs=2"}
	var logs bytes.Buffer
	o.Log = log.New(&logs)
	var steps []Step
	o.OnStep = func(s Step) { steps = append(steps, s) }

	var dry bytes.Buffer
	d := o
	d.DryRun, d.Out = true, &dry
	if _, err := Install(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if want := " --override-input secrets path:" + f.root + "/var/lib/fleet/inputs/secrets with NIX_CONFIG access-tokens=<redacted> max-jobs=<redacted>\n"; !strings.Contains(dry.String(), want) {
		t.Errorf("dry-run listing lacks %q:\n%s", want, dry.String())
	}

	_, err := Install(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "error: unable to download with token <redacted>") {
		t.Fatalf("got %v, want nixos-install's error, redacted", err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "nix_config"))
	if want := "access-tokens = github.com=" + token + "\nmax-jobs = 2"; string(got) != want {
		t.Errorf("nixos-install's NIX_CONFIG: %q, want %q", got, want)
	}
	if ps, _ := os.ReadFile(filepath.Join(out, "ps")); len(ps) > 0 {
		t.Errorf("the token is on the installer's process list, in %s", ps)
	}
	for what, s := range map[string]string{"dry-run listing": dry.String(), "log": logs.String(), "error": err.Error()} {
		if strings.Contains(s, token) {
			t.Errorf("the token is in the %s:\n%s", what, s)
		}
	}
	var installSteps []string
	for _, s := range steps {
		if s.Phase == PhaseInstall {
			installSteps = append(installSteps, fmt.Sprintf("%d/%d %s", s.Done, s.Total, s.Name))
		}
	}
	want := []string{
		"1/2 copying path '/nix/store/aaaa-a' from 'https://cache.nixos.org'...",
		"2/2 copying path '/nix/store/bbbb-b' from 'https://cache.nixos.org'...",
		"2/2 error: unable to download with token <redacted>",
	}
	if strings.Join(installSteps, "\n") != strings.Join(want, "\n") {
		t.Errorf("install steps:\n%s\nwant:\n%s", strings.Join(installSteps, "\n"), strings.Join(want, "\n"))
	}

	for _, bad := range []struct{ opt, want string }{
		{"access-tokens", `--option "access-tokens": want NAME=VALUE`},
		{"access tokens=x", `--option "access tokens": not a nix setting name`},
		{"substituters=a\nsandbox=false", `--option substituters: the value holds a line break`},
	} {
		o.NixOptions = []string{bad.opt}
		var oe *OptionError
		if _, err := Install(context.Background(), o); !errors.As(err, &oe) || err.Error() != bad.want {
			t.Errorf("--option %q: got %v, want %s", bad.opt, err, bad.want)
		}
	}
}
