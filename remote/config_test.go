package remote

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestResolveSSHConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	os.WriteFile(cfgPath, []byte(`
Host nas
  HostName 10.0.0.5
  User admin
  Port 2222
  IdentityFile ~/.ssh/nas_key
  IdentityFile /keys/%r@%h
  IdentitiesOnly yes
  UserKnownHostsFile /etc/fleet/known_hosts /tmp/kh2
  StrictHostKeyChecking accept-new
  ProxyJump bastion,root@10.0.0.1:2200

Host bastion
  HostName bastion.example.org

Host *
  User fallback
`), 0o600)
	cfg, err := LoadSSHConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	ep, err := Resolve(Target{Host: "nas"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Endpoint{
		Alias: "nas", User: "admin", Host: "10.0.0.5", Port: 2222,
		IdentityFiles:  []string{filepath.Join(home, ".ssh/nas_key"), "/keys/admin@10.0.0.5"},
		IdentitiesOnly: true,
		KnownHosts:     []string{"/etc/fleet/known_hosts", "/tmp/kh2"},
		StrictHostKey:  "accept-new",
		ProxyJump:      []string{"bastion", "root@10.0.0.1:2200"},
	}
	if !reflect.DeepEqual(ep, want) {
		t.Fatalf("Resolve(nas) =\n%+v\nwant\n%+v", ep, want)
	}
	if ep.KnownHostsName() != "[10.0.0.5]:2222" || ep.Addr() != "10.0.0.5:2222" {
		t.Fatalf("names: %s %s", ep.KnownHostsName(), ep.Addr())
	}

	// Explicit parts of the target win over the config.
	ep, _ = Resolve(Target{User: "root", Host: "nas", Port: 22}, cfg)
	if ep.User != "root" || ep.Port != 22 || ep.Host != "10.0.0.5" || ep.KnownHostsName() != "10.0.0.5" {
		t.Fatalf("explicit target lost: %+v", ep)
	}
	// Unknown hosts get the wildcard and defaults.
	ep, _ = Resolve(Target{Host: "fd00::9"}, cfg)
	if ep.User != "fallback" || ep.Port != 22 || ep.Addr() != "[fd00::9]:22" || ep.ProxyJump != nil {
		t.Fatalf("defaults: %+v", ep)
	}
}

func TestResolveBadPortInConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte("Host x\n  Port http\n"), 0o600)
	cfg, err := LoadSSHConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(Target{Host: "x"}, cfg)
	if err == nil || err.Error() != `ssh config for x: port "http" is not a number from 1 to 65535` {
		t.Fatalf("got %v", err)
	}
}
