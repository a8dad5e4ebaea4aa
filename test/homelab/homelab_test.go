package homelab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/disko"
	"github.com/fleetnix/fleet/flake"
	"github.com/fleetnix/fleet/secrets"
	"github.com/fleetnix/fleet/test/nixtest"
)

// TestSetup: the instantiated example is consistent without a VM: the
// lock pins the served commit and its narHash, the flake points at the
// server, each host's declared secrets decrypt with its own host key and
// every secret with the operator's key, and the host files declare what
// Declared says (checked against the committed sources).
func TestSetup(t *testing.T) {
	nixtest.Require(t, "git", "git-shell", "ssh-keygen")
	f := Setup(t)
	lock, err := flake.ReadLock(filepath.Join(f.Dir, "flake.lock"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := lock.Input("secrets")
	if err != nil {
		t.Fatal(err)
	}
	if in.Locked.Rev != f.Rev || in.Locked.NarHash != f.NarHash {
		t.Fatalf("lock %s %s, served %s %s", in.Locked.Rev, in.Locked.NarHash, f.Rev, f.NarHash)
	}
	if head := strings.TrimSpace(nixtest.Git(t, f.SecretsDir, "rev-parse", "HEAD")); head != f.Rev {
		t.Fatalf("clone at %s, served %s", head, f.Rev)
	}
	nix, _ := os.ReadFile(filepath.Join(f.Dir, "flake.nix"))
	if strings.Contains(string(nix), placeholderURL) || !strings.Contains(string(nix), f.Git.GuestURL("secrets")) {
		t.Fatal("flake.nix does not point at the git server")
	}
	op, err := secrets.LoadIdentities([]string{f.Operator}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, plain := range f.Plain {
		got, err := secrets.DecryptFile(filepath.Join(f.SecretsDir, name+".age"), op)
		if err != nil || string(got) != plain {
			t.Fatalf("%s with the operator key: %v", name, err)
		}
	}
	for host, declared := range Declared {
		ids, err := secrets.LoadIdentities([]string{f.HostKeys[host].Path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := os.ReadFile(filepath.Join(Source(), "hosts", host+".nix"))
		for name := range declared {
			if !strings.Contains(string(src), name) {
				t.Errorf("hosts/%s.nix does not declare %s", host, name)
			}
			got, err := secrets.DecryptFile(filepath.Join(f.SecretsDir, name+".age"), ids)
			if err != nil || string(got) != f.Plain[name] {
				t.Errorf("%s cannot decrypt its %s: %v", host, name, err)
			}
		}
	}
}

// TestLayouts: every host's disko layout, evaluated from its file with
// the real Nix, is one fleet parses and plans in each of the install's
// modes; tank's pool is the mirror of data1 and data2 with its encrypted
// dataset's key asked for by the dataset's name.
func TestLayouts(t *testing.T) {
	st := nixtest.NewStore(t)
	for _, host := range Hosts {
		file := filepath.Join(Source(), "hosts", host+".nix")
		out := st.Nix("/", "eval", "--json", "--impure", "--expr", `(import `+file+` { secrets = "/secrets"; }).disko.devices`)
		s, err := disko.Parse([]byte(out))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		for _, m := range []disko.Mode{disko.ModeDestroyFormatMount, disko.ModeMount, disko.ModeUnmount} {
			if _, err := disko.BuildPlan(s, m, disko.Options{}); err != nil {
				t.Errorf("%s: %s: %v", host, m, err)
			}
		}
		if host != "tank" {
			continue
		}
		steps, _ := disko.BuildPlan(s, disko.ModeDestroyFormatMount, disko.Options{})
		var cmds []string
		for _, st := range steps {
			for _, c := range st.Cmds {
				cmds = append(cmds, strings.Join(c, " ")+" <"+st.KeyName)
			}
		}
		for _, want := range []string{
			"zpool create -f tank -R /mnt -o ashift=12 -O atime=off -O com.sun:auto-snapshot=false -O compression=zstd -O mountpoint=none mirror /dev/vdb1 /dev/vdc1 <",
			"zfs create -up tank/secret -o encryption=aes-256-gcm -o keyformat=passphrase -o keylocation=prompt -o mountpoint=/srv/secret <tank/secret",
			"zfs set keylocation=file:///run/agenix/tank-key tank/secret <tank/secret",
			"mount -t zfs -o defaults -o X-mount.mkdir tank/media /mnt/srv/media <",
		} {
			if !slices.Contains(cmds, want) {
				t.Errorf("tank: no %q in its plan:\n%s", want, strings.Join(cmds, "\n"))
			}
		}
	}
}
