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

// A flake evaluable without nixpkgs, shaped like a NixOS configuration.
const testFlake = `{
  inputs.secrets = { url = "path:./secrets"; flake = false; };
  outputs = { self, secrets }: {
    nixosConfigurations.nas.config = {
      nixpkgs.hostPlatform.system = "aarch64-linux";
      networking.hostName = "nas-1";
      disko.devices.disk.main = { type = "disk"; device = "/dev/vda"; _index = 0; _create = x: x; _meta = { }; content = { type = "gpt"; }; };
      age.secrets.openai-key.file = "${secrets}/openai-key.age";
      age.secrets.smb = { file = "${secrets}/hosts/nas/smb.age"; mode = "0440"; owner = "smb"; group = "users"; };
      age.secrets.vpn = { file = "${secrets}/vpn.age"; path = "/etc/wireguard/wg0.conf"; symlink = false; name = "wg0"; };
      age.identityPaths = [ "/etc/ssh/ssh_host_ed25519_key" "/persist/age.key" ];
      services.openssh.hostKeys = [ { path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; } ];
    };
  };
}
`

func TestEvalSpecWithNix(t *testing.T) {
	nixtest.Require(t, "nix")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "secrets/hosts/nas"), 0o755)
	os.WriteFile(filepath.Join(dir, "flake.nix"), []byte(testFlake), 0o644)
	for _, f := range []string{"openai-key.age", "hosts/nas/smb.age", "vpn.age"} {
		os.WriteFile(filepath.Join(dir, "secrets", f), []byte("x"), 0o644)
	}
	ctx := context.Background()
	// Lock first (as the operator's repo would have), then evaluate in the
	// same private store.
	st := nixtest.NewStore(t)
	st.Nix(dir, "flake", "lock", dir)
	for _, kv := range st.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	store := st.Path
	s, err := EvalSpec(ctx, &remote.Local{}, dir, "nas", "--store", store)
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := map[string]Secret{
		"openai-key": {Name: "openai-key", File: "openai-key.age", Path: "/run/agenix/openai-key", Mode: "0400", Owner: "0", Group: "0", Symlink: &yes},
		"smb":        {Name: "smb", File: "hosts/nas/smb.age", Path: "/run/agenix/smb", Mode: "0440", Owner: "smb", Group: "users", Symlink: &yes},
		"vpn":        {Name: "wg0", File: "vpn.age", Path: "/etc/wireguard/wg0.conf", Mode: "0400", Owner: "0", Group: "0", Symlink: &no},
	}
	if !reflect.DeepEqual(s.Secrets, want) {
		t.Fatalf("secrets:\n%+v\nwant\n%+v", s.Secrets, want)
	}
	if s.Name != "nas" || s.System != "aarch64-linux" || s.HostName != "nas-1" || s.SecretsInput != "secrets" {
		t.Fatalf("spec: %+v", s)
	}
	if !reflect.DeepEqual(s.IdentityPaths, []string{"/etc/ssh/ssh_host_ed25519_key", "/persist/age.key"}) || !reflect.DeepEqual(s.HostKeys, []string{"/etc/ssh/ssh_host_ed25519_key"}) {
		t.Fatalf("keys: %v %v", s.IdentityPaths, s.HostKeys)
	}
	if d := string(s.Disko); !strings.Contains(d, `"_index":0`) || strings.Contains(d, "_create") || strings.Contains(d, "_meta") {
		t.Fatalf("disko not stripped of internal attributes: %s", d)
	}
	// A host the flake does not have: a clear error.
	_, err = EvalSpec(ctx, &remote.Local{}, dir, "nope", "--store", store)
	if err == nil || !strings.HasPrefix(err.Error(), "flake "+dir+" has no nixosConfigurations.nope\nhint:") {
		t.Fatalf("missing host: %v", err)
	}
}

func TestLoadSpecErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ json, want string }{
		"unknown": {`{"name":"nas","system":"x86_64-linux","secretz":{}}`, `json: unknown field "secretz"`},
		"system":  {`{"name":"nas","system":"x86_64-darwin"}`, `system "x86_64-darwin" is not a Linux system fleet can install`},
		"nosys":   {`{"name":"nas"}`, `system is empty (want e.g. x86_64-linux or aarch64-linux)`},
		"file":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"../a.age"}}}`, `secrets.a.file "../a.age": want a path inside the secrets repository`},
		"mode":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","mode":"rw"}}}`, `secrets.a.mode "rw": want an octal mode like 0400`},
		"path":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","path":"run/a"}}}`, `secrets.a.path "run/a": want a clean absolute path`},
		"idpath":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["age.key"]}`, `identityPaths[0] "age.key": want a clean absolute path (no . or .. elements)`},
		// Paths that climb out of the new root, and names joined into paths (#14 item 6).
		"idclimb":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["/etc/ssh/k","/../../tmp/x"]}`, `identityPaths[1] "/../../tmp/x": want a clean absolute path (no . or .. elements)`},
		"hostkey":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["/k"],"hostKeys":["/etc/ssh/./k"]}`, `hostKeys[0] "/etc/ssh/./k": want a clean absolute path (no . or .. elements)`},
		"idroot":   {`{"name":"nas","system":"x86_64-linux","identityPaths":["/"]}`, `identityPaths[0] "/": want a clean absolute path (no . or .. elements)`},
		"pathdots": {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","path":"/run/agenix/../../etc/a"}}}`, `secrets.a.path "/run/agenix/../../etc/a": want a clean absolute path`},
		"fileup":   {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"hosts/../../a.age"}}}`, `secrets.a.file "hosts/../../a.age": want a path inside the secrets repository`},
		"input":    {`{"name":"nas","system":"x86_64-linux","secretsInput":"../../../tmp"}`, `secretsInput "../../../tmp": want a flake input name (letters, digits, _ and -)`},
	} {
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, []byte(tc.json), 0o644)
		_, err := LoadSpec(p)
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	p := filepath.Join(dir, "ok.json")
	os.WriteFile(p, []byte(`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/hosts/a.age"}}}`), 0o644)
	s, err := LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Secrets["a"]; a.File != "hosts/a.age" || a.Path != "/run/agenix/a" || a.Mode != "0400" || !*a.Symlink {
		t.Fatalf("defaults: %+v", a)
	}
	if !reflect.DeepEqual(s.IdentityPaths, []string{"/etc/ssh/ssh_host_ed25519_key"}) || s.HostName != "nas" {
		t.Fatalf("defaults: %+v", s)
	}
}
