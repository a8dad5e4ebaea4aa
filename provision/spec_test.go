package provision

import (
	"context"
	"encoding/json"
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
	// The files are store paths in the secrets input (a path: input
	// here): resolving them finds that input by its narHash.
	if err := resolveSources(ctx, &remote.Local{}, s, dir, ""); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := map[string]Secret{
		"openai-key": {Name: "openai-key", File: "openai-key.age", Input: "secrets", Path: "/run/agenix/openai-key", Mode: "0400", Owner: "0", Group: "0", Symlink: &yes},
		"smb":        {Name: "smb", File: "hosts/nas/smb.age", Input: "secrets", Path: "/run/agenix/smb", Mode: "0440", Owner: "smb", Group: "users", Symlink: &yes},
		"vpn":        {Name: "wg0", File: "vpn.age", Input: "secrets", Path: "/etc/wireguard/wg0.conf", Mode: "0400", Owner: "0", Group: "0", Symlink: &no},
	}
	if !reflect.DeepEqual(s.Secrets, want) {
		t.Fatalf("secrets:\n%+v\nwant\n%+v", s.Secrets, want)
	}
	if s.Name != "nas" || s.System != "aarch64-linux" || s.HostName != "nas-1" || s.SecretsInput != "secrets" || s.SecretsDir != "/run/agenix" || s.SecretsMountPoint != "/run/agenix.d" {
		t.Fatalf("spec: %+v", s)
	}
	if !reflect.DeepEqual(s.IdentityPaths, []string{"/etc/ssh/ssh_host_ed25519_key", "/persist/age.key"}) || !reflect.DeepEqual(s.HostKeys, []HostKey{{Path: "/etc/ssh/ssh_host_ed25519_key", Type: "ed25519"}}) {
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
		"file":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"../a.age"}}}`, `secrets.a.file "../a.age": want a path inside the flake or one of its inputs`},
		"mode":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","mode":"rw"}}}`, `secrets.a.mode "rw": want an octal mode like 0400`},
		"path":    {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","path":"run/a"}}}`, `secrets.a.path "run/a": want a clean absolute path`},
		"idpath":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["age.key"]}`, `identityPaths[0] "age.key": want a clean absolute path (no . or .. elements)`},
		// Paths that climb out of the new root, and names joined into paths (#14 item 6).
		"idclimb":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["/etc/ssh/k","/../../tmp/x"]}`, `identityPaths[1] "/../../tmp/x": want a clean absolute path (no . or .. elements)`},
		"hostkey":  {`{"name":"nas","system":"x86_64-linux","identityPaths":["/k"],"hostKeys":["/etc/ssh/./k"]}`, `hostKeys[0].path "/etc/ssh/./k": want a clean absolute path (no . or .. elements)`},
		"hosttype": {`{"name":"nas","system":"x86_64-linux","hostKeys":[{"path":"/etc/ssh/k","type":"ed448"}]}`, `hostKeys[0].type "ed448": want one of rsa, ed25519, ecdsa, dsa`},
		"hostkeyx": {`{"name":"nas","system":"x86_64-linux","hostKeys":[{"path":"/etc/ssh/k","bits":4096}]}`, `json: unknown field "bits"`},
		"idroot":   {`{"name":"nas","system":"x86_64-linux","identityPaths":["/"]}`, `identityPaths[0] "/": want a clean absolute path (no . or .. elements)`},
		"pathdots": {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","path":"/run/agenix/../../etc/a"}}}`, `secrets.a.path "/run/agenix/../../etc/a": want a clean absolute path`},
		"fileup":   {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"hosts/../../a.age"}}}`, `secrets.a.file "hosts/../../a.age": want a path inside the flake or one of its inputs`},
		"storeup":  {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/../../etc/a"}}}`, `secrets.a.file "/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/../../etc/a": want a path inside the flake or one of its inputs`},
		"dir":      {`{"name":"nas","system":"x86_64-linux","secretsDir":"/run/../etc"}`, `secretsDir "/run/../etc": want a clean absolute path`},
		"mnt":      {`{"name":"nas","system":"x86_64-linux","secretsMountPoint":"run/agenix.d"}`, `secretsMountPoint "run/agenix.d": want a clean absolute path`},
		"sinput":   {`{"name":"nas","system":"x86_64-linux","secrets":{"a":{"file":"a.age","input":"../x"}}}`, `secrets.a.input "../x": want a flake input name, or self`},
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
	os.WriteFile(p, []byte(`{"name":"nas","system":"x86_64-linux","secretsInput":"secrets","secretsDir":"/run/secrets","secrets":{"a":{"file":"/nix/store/0c0hzfyqpw5mj8vamb4g6qrimh6rngyr-source/hosts/a.age"},"b":{"file":"b.age","name":"bee"}}}`), 0o644)
	s, err := LoadSpec(p)
	if err != nil {
		t.Fatal(err)
	}
	// A spec file's store path is in its secretsInput when no input is
	// locked to it and the flake (none here) lacks the file.
	if err := resolveSources(context.Background(), &remote.Local{}, s, dir, ""); err != nil {
		t.Fatal(err)
	}
	if a := s.Secrets["a"]; a.File != "hosts/a.age" || a.Input != "secrets" || a.Path != "/run/secrets/a" || a.Mode != "0400" || !*a.Symlink {
		t.Fatalf("defaults: %+v", a)
	}
	if b := s.Secrets["b"]; b.Path != "/run/secrets/bee" || s.SecretsMountPoint != "/run/agenix.d" {
		t.Fatalf("defaults: %+v, mount point %s", b, s.SecretsMountPoint)
	}
	// NixOS's default host keys, RSA first, and agenix's default
	// identityPaths from them, in the same order.
	if !reflect.DeepEqual(s.HostKeys, []HostKey{{"/etc/ssh/ssh_host_rsa_key", "rsa"}, {"/etc/ssh/ssh_host_ed25519_key", "ed25519"}}) ||
		!reflect.DeepEqual(s.IdentityPaths, []string{"/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ed25519_key"}) || s.HostName != "nas" {
		t.Fatalf("defaults: %+v", s)
	}
}

// TestSpecHostKeyForms reads hostKeys as objects (what fleet spec --json
// prints) and as bare paths (the earlier form), whose type is then read
// from ssh-keygen's file name; agenix's default identityPaths keep only
// the rsa and ed25519 keys, in order.
func TestSpecHostKeyForms(t *testing.T) {
	s, err := parseSpec([]byte(`{"name":"nas","system":"x86_64-linux","hostKeys":[
  "/etc/ssh/ssh_host_ecdsa_key", {"path":"/persist/ssh/host_ed","type":"ed25519"}, "/persist/ssh/custom", "/etc/ssh/ssh_host_rsa_key"]}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []HostKey{{"/etc/ssh/ssh_host_ecdsa_key", "ecdsa"}, {"/persist/ssh/host_ed", "ed25519"}, {"/persist/ssh/custom", ""}, {"/etc/ssh/ssh_host_rsa_key", "rsa"}}
	if !reflect.DeepEqual(s.HostKeys, want) {
		t.Fatalf("hostKeys: %+v", s.HostKeys)
	}
	if !reflect.DeepEqual(s.IdentityPaths, []string{"/persist/ssh/host_ed", "/etc/ssh/ssh_host_rsa_key"}) {
		t.Fatalf("identityPaths: %v", s.IdentityPaths)
	}
	b, _ := json.Marshal(s)
	again, err := parseSpec(b, "round trip")
	if err != nil || !reflect.DeepEqual(again.HostKeys, want) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
}
