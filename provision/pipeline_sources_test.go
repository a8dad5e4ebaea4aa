package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/log"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
)

// recordArgs stands in for nixos-install: it keeps its arguments.
const recordArgs = `#!/bin/sh
printf '%s\n' "$@" > "$FLEET_TEST_OUT/args"
`

// sourceHost is a host whose .age files are where where says; the flake
// is evaluated with the real nix into the spec.
const sourceHost = `nixosConfigurations.nas.config = {
      nixpkgs.hostPlatform.system = "x86_64-linux";
      services.openssh.hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
      age.secrets.api.file = FILE;
    };`

// TestPipelineSecretsWhereverTheyAre installs (preflight to nixos-install,
// with a stand-in for nixos-install) a host whose .age files are in the
// flake itself, then one whose files are in an input named agenix-secrets:
// the spec comes from the real nix, fleet finds the files, decrypts them
// locally with the host identity, fetches and stages only an input that
// holds them, and points nixos-install at the staged input by its name.
func TestPipelineSecretsWhereverTheyAre(t *testing.T) {
	nixtest.Require(t, "nix", "git")
	st := nixtest.NewStore(t)
	for _, kv := range st.ClientEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	id := sshtest.NewKey(t, "ed25519", "", "nas")
	other := sshtest.NewKey(t, "ed25519", "", "other")
	ct, err := secrets.Encrypt([]byte("sk-api-0123"), []string{id.Line}, false)
	if err != nil {
		t.Fatal(err)
	}
	key := sshtest.NewKey(t, "ed25519", "", "op")
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}})
	f := &pipelineFixture{key: key, srv: srv}
	out := f.watchInstaller(t, map[string]string{"nixos-install": recordArgs})
	options := func(flakeDir, root, identity string) Options {
		return Options{
			Host:   HostSource{Name: "nas", FlakeDir: flakeDir},
			Target: remote.Target{User: f.srv.User, Host: f.srv.Host, Port: f.srv.Port},
			Dial: remote.Options{HostKey: remote.HostKeyPolicy{Pin: f.srv.Fingerprint()},
				Auth: remote.Auth{IdentityFiles: []string{key.Path}, AgentSocket: "none"}},
			Root: root, Phases: []string{PhasePreflight, PhaseStage, PhaseIdentity, PhaseInstall}, Force: true,
			Identity: identity, Log: log.New(testLog{t}), ScanRoots: []string{t.TempDir()},
		}
	}
	flakeRepo := func(t *testing.T, nix string, files map[string]string) string {
		files["flake.nix"] = nix
		dir := nixtest.Repo(t, files)
		st.Nix(dir, "flake", "lock", dir)
		if _, err := os.Stat(filepath.Join(dir, "flake.lock")); err == nil {
			nixtest.Git(t, dir, "add", "flake.lock")
		}
		return dir
	}

	t.Run("in_the_flake", func(t *testing.T) {
		dir := flakeRepo(t, `{ outputs = { self }: { `+strings.Replace(sourceHost, "FILE", "./secrets/api.age", 1)+` }; }`,
			map[string]string{"secrets/api.age": string(ct)})
		root := t.TempDir()
		o := options(dir, root, id.Path)
		// No agent at all: nothing is fetched, so none is needed.
		o.Forward.Disabled = true
		sum, err := Install(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "etc/nixos/secrets/api.age")); string(got) != string(ct) {
			t.Errorf("the flake's .age file was not staged with it")
		}
		if _, err := os.Stat(filepath.Join(root, "var/lib/fleet/inputs")); !os.IsNotExist(err) {
			t.Errorf("an input was staged: %v", err)
		}
		if sum.ForwardPolicy != "" || sum.Forwarding != "" {
			t.Errorf("an agent was forwarded: %q %q", sum.ForwardPolicy, sum.Forwarding)
		}
		if args, _ := os.ReadFile(filepath.Join(out, "args")); strings.Contains(string(args), "--override-input") {
			t.Errorf("nixos-install was given an override: %s", args)
		}
		// The local decryption check read the flake's copy.
		o = options(dir, t.TempDir(), other.Path)
		o.Forward.Disabled = true
		_, err = Install(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "cannot decrypt every secret nas declares:\n  api (secrets/api.age): not encrypted to this identity") {
			t.Errorf("an identity that cannot decrypt: %v", err)
		}
	})

	t.Run("in_an_input_of_another_name", func(t *testing.T) {
		repo := nixtest.Repo(t, map[string]string{"nas/api.age": string(ct)})
		dir := flakeRepo(t, `{
  inputs.agenix-secrets = { url = "git+file://`+repo+`"; flake = false; };
  outputs = { self, agenix-secrets }: { `+strings.Replace(sourceHost, "FILE", `"${agenix-secrets}/nas/api.age"`, 1)+` }; }`, map[string]string{})
		root := t.TempDir()
		sum, err := Install(context.Background(), options(dir, root, id.Path))
		if err != nil {
			t.Fatal(err)
		}
		staged := filepath.Join(root, "var/lib/fleet/inputs/agenix-secrets")
		if got, _ := os.ReadFile(filepath.Join(staged, "nas/api.age")); string(got) != string(ct) {
			t.Errorf("the input was not staged under its name")
		}
		args, _ := os.ReadFile(filepath.Join(out, "args"))
		if !strings.Contains(string(args), "\n--override-input\nagenix-secrets\npath:"+staged+"\n") {
			t.Errorf("nixos-install's arguments: %s", args)
		}
		if sum.Phases[0].Status != "done" {
			t.Errorf("phases: %+v", sum.Phases)
		}
		// --secrets-input that names another input: refused before connecting.
		o := options(dir, t.TempDir(), id.Path)
		o.Host.SecretsInput = SelfInput
		if _, err := Install(context.Background(), o); !errors.Is(err, ErrSecretSource) {
			t.Errorf("--secrets-input self: %v", err)
		}
	})
}
