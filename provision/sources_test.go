package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/nixtest"
)

// sourcesFlake is a flake in the infra/ directory of a git repository,
// with its hosts' .age files in the three places agenix users keep them:
// the flake's own files (a path, a copy made by interpolation, a path
// under self), an input named secrets, and an input of another name.
const sourcesFlake = `{
  inputs.secrets = { url = "git+file://SECRETS"; flake = false; };
  inputs.agenix-secrets = { url = "git+file://AGENIX"; flake = false; };
  outputs = { self, secrets, agenix-secrets }: let
    host = extra: { nixpkgs.hostPlatform.system = "x86_64-linux"; } // extra;
  in {
    nixosConfigurations = {
      nas.config = host { age.secrets = {
        openai-key.file = "${secrets}/openai-key.age";
        smb = { file = "${secrets}/hosts/nas/smb.age"; mode = "0440"; };
      }; };
      vault.config = host { age = {
        secretsDir = "/run/secrets"; secretsMountPoint = "/run/secrets.d";
        secrets.db = { file = "${agenix-secrets}/vault/db.age"; name = "db.env"; };
      }; };
      router.config = host { age.secrets = {
        wg.file = ./secrets/wg.age;
        dd.file = "${./secrets/dd.age}";
      }; };
      selfpath.config = host { age.secrets.wg.file = "${self}/secrets/wg.age"; };
      mixed.config = host { age.secrets = {
        a.file = "${secrets}/openai-key.age";
        b.file = "${agenix-secrets}/vault/db.age";
      }; };
      rekeyed.config = host { age = {
        rekey.hostPubkey = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq";
        secrets.x.rekeyFile = ./secrets/wg.age;
      }; };
    };
  };
}
`

type sourcesFixture struct {
	repo, dir string // the git repository, the flake in it
	store     string // nix --store
}

func newSourcesFixture(t *testing.T) *sourcesFixture {
	t.Helper()
	nixtest.Require(t, "nix", "git")
	secrets := nixtest.Repo(t, map[string]string{"openai-key.age": "a", "hosts/nas/smb.age": "b"})
	agenix := nixtest.Repo(t, map[string]string{"vault/db.age": "c"})
	f := &sourcesFixture{repo: t.TempDir()}
	f.dir = filepath.Join(f.repo, "infra")
	os.MkdirAll(filepath.Join(f.dir, "secrets"), 0o755)
	os.WriteFile(filepath.Join(f.dir, "flake.nix"), []byte(strings.NewReplacer("SECRETS", secrets, "AGENIX", agenix).Replace(sourcesFlake)), 0o644)
	os.WriteFile(filepath.Join(f.dir, "secrets/wg.age"), []byte("wg ciphertext"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "secrets/dd.age"), []byte("dd ciphertext"), 0o644)
	nixtest.Git(t, f.repo, "init", "-q", "-b", "main")
	nixtest.Git(t, f.repo, "add", "-A")
	st := nixtest.NewStore(t)
	for _, kv := range st.ClientEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	f.store = st.Path
	st.Nix(f.dir, "flake", "lock", f.dir)
	nixtest.Git(t, f.repo, "add", "-A")
	return f
}

// TestResolveSourcesWithNix evaluates the hosts with the real nix (a
// chroot store, whose path literals nix 2.8 prints with the chroot's
// directory in front) and checks where fleet finds each .age file: by the
// inputs' store paths computed from flake.lock, and the flake's own files
// mapped back to the flake's directory inside its git repository.
func TestResolveSourcesWithNix(t *testing.T) {
	f := newSourcesFixture(t)
	ctx := context.Background()
	local := &remote.Local{}
	specs, failed, err := EvalFleet(ctx, local, f.dir, nil, "--store", f.store)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 5 || !errors.Is(failed["rekeyed"], ErrAgenixRekey) || len(failed) != 1 {
		t.Fatalf("specs %v, failed %v", keys(specs), failed)
	}
	if msg := failed["rekeyed"].Error(); !strings.Contains(msg, "host rekeyed uses agenix-rekey (age.rekey is set): agenix-rekey is not supported\nhint: ") {
		t.Errorf("agenix-rekey refused as %q", msg)
	}
	res, err := newSourceResolver(ctx, local, f.dir, "")
	if err != nil {
		t.Fatal(err)
	}
	type where struct{ input, file, path string }
	want := map[string]map[string]where{
		"nas":    {"openai-key": {"secrets", "openai-key.age", "/run/agenix/openai-key"}, "smb": {"secrets", "hosts/nas/smb.age", "/run/agenix/smb"}},
		"vault":  {"db": {"agenix-secrets", "vault/db.age", "/run/secrets/db.env"}},
		"router": {"wg": {"self", "secrets/wg.age", "/run/agenix/wg"}, "dd": {"self", "secrets/dd.age", "/run/agenix/dd"}},
	}
	wantInput := map[string]string{"nas": "secrets", "vault": "agenix-secrets", "router": "self"}
	for host, w := range want {
		s := specs[host]
		if err := res.resolveSpec(s); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		got := map[string]where{}
		for n, sec := range s.Secrets {
			got[n] = where{sec.Input, sec.File, sec.Path}
		}
		if !reflect.DeepEqual(got, w) || s.SecretsInput != wantInput[host] {
			t.Errorf("%s: %+v (secrets input %s), want %+v (%s)", host, got, s.SecretsInput, w, wantInput[host])
		}
	}
	if v := specs["vault"]; v.SecretsDir != "/run/secrets" || v.SecretsMountPoint != "/run/secrets.d" {
		t.Errorf("vault's agenix dirs: %s %s", v.SecretsDir, v.SecretsMountPoint)
	}
	if specs["router"].needsInput() || !specs["nas"].needsInput() {
		t.Errorf("needsInput: router %v, nas %v", specs["router"].needsInput(), specs["nas"].needsInput())
	}

	// "${self}/..." in a flake in a subdirectory: nix 2.8's self is the
	// repository's top, so the path names a file outside the flake's
	// directory (which is not staged); later nix versions point self at
	// the flake's directory.
	sp := specs["selfpath"].Secrets["wg"].File
	err = res.resolveSpec(specs["selfpath"])
	if _, rel, _ := strings.Cut(sp, "-source/"); strings.HasPrefix(rel, "infra/") {
		if err != nil || specs["selfpath"].Secrets["wg"].File != "secrets/wg.age" {
			t.Errorf("self path %s: %v %+v", sp, err, specs["selfpath"].Secrets["wg"])
		}
	} else if !errors.Is(err, ErrSecretSource) || !strings.Contains(err.Error(), "secrets.wg.file secrets/wg.age is outside the flake's directory "+f.dir+", so it is not staged with the flake") {
		t.Errorf("self path %s: %v", sp, err)
	}

	// Two inputs for one host: refused, naming them.
	err = res.resolveSpec(specs["mixed"])
	if !errors.Is(err, ErrSecretSource) || !strings.HasPrefix(err.Error(), "where the .age files are: host mixed's .age files are in the inputs agenix-secrets and secrets; fleet stages one secrets input") {
		t.Errorf("mixed: %v", err)
	}

	// --secrets-input that contradicts the store paths.
	for _, tc := range []struct{ host, want, err string }{
		{"nas", "agenix-secrets", "is in the input secrets, not agenix-secrets (--secrets-input)\nhint: drop --secrets-input, or pass --secrets-input secrets"},
		{"router", "secrets", "is the flake's own secrets/"},
	} {
		s, _, err := EvalFleet(ctx, local, f.dir, []string{tc.host}, "--store", f.store)
		if err != nil {
			t.Fatal(err)
		}
		err = resolveSources(ctx, local, s[tc.host], f.dir, tc.want)
		if !errors.Is(err, ErrSecretSource) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s with --secrets-input %s: %v", tc.host, tc.want, err)
		}
	}

	// A file only git does not track is not the flake's (nix would not
	// have copied it): a spec file naming it is refused.
	os.WriteFile(filepath.Join(f.dir, "secrets/new.age"), []byte("x"), 0o644)
	s := &Spec{Name: "router", System: "x86_64-linux", Secrets: map[string]Secret{"n": {File: "secrets/new.age", Input: SelfInput}}}
	s.Normalize()
	err = resolveSources(ctx, local, s, f.dir, "")
	if !errors.Is(err, ErrSecretSource) || !strings.Contains(err.Error(), "(git does not track secrets/new.age in "+f.dir+")") || !strings.Contains(err.Error(), "\nhint: git add it") {
		t.Errorf("untracked: %v", err)
	}
	// A host the flake lacks.
	if _, _, err := EvalFleet(ctx, local, f.dir, []string{"nas", "nope"}, "--store", f.store); err == nil || !strings.HasPrefix(err.Error(), "flake "+f.dir+" has no nixosConfigurations.nope\nhint:") {
		t.Errorf("missing host: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
