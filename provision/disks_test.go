package provision

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiskKeysByPathOrName: nixos-anywhere's --disk-encryption-keys
// REMOTE_PATH LOCAL_PATH gives the key to every LUKS device whose layout
// reads REMOTE_PATH (passwordFile or settings.keyFile), fleet's --disk-key
// NAME=FILE to the device called NAME; a key no device takes is refused,
// naming the devices there are.
func TestDiskKeysByPathOrName(t *testing.T) {
	layout := `{"disk": {"main": {"type": "disk", "device": "/dev/vda", "content": {"type": "gpt", "partitions": {
  "a": {"size": "100M", "content": {"type": "luks", "name": "crypted", "passwordFile": "/tmp/secret.key", "content": {"type": "lvm_pv", "vg": "pool"}}},
  "b": {"size": "100M", "content": {"type": "luks", "name": "data", "settings": {"keyFile": "/tmp/secret.key"}}},
  "c": {"size": "100%", "content": {"type": "luks", "name": "swapcrypt", "settings": {"keyFile": "/run/swap.key"}, "content": {"type": "swap"}}}}}}},
 "lvm_vg": {"pool": {"type": "lvm_vg", "lvs": {"root": {"size": "100%FREE", "content": {"type": "luks", "name": "inner", "content": {"type": "filesystem", "format": "ext4", "mountpoint": "/"}}}}}}}`
	spec := &Spec{Name: "vault", Disko: json.RawMessage(layout)}
	dir := t.TempDir()
	key := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	d, err := newDiskoLayout(spec, DiskOptions{KeyFiles: map[string]string{"/tmp/secret.key": key("shared", "s3cret"), "inner": key("inner", "in"), "/run/swap.key": key("swap", "sw")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for n, b := range d.keys {
		got[n] = string(b)
	}
	if want := map[string]string{"crypted": "s3cret", "data": "s3cret", "inner": "in", "swapcrypt": "sw"}; len(got) != len(want) || got["crypted"] != "s3cret" || got["data"] != "s3cret" || got["inner"] != "in" || got["swapcrypt"] != "sw" {
		t.Errorf("keys %v, want %v", got, want)
	}
	for _, tc := range []struct {
		keys map[string]string
		want string
	}{
		{map[string]string{"/tmp/other.key": key("o", "o")}, "disk key for /tmp/other.key: no LUKS device of host vault's layout reads /tmp/other.key (as its passwordFile or settings.keyFile)\nhint: its LUKS devices are crypted (passwordFile /tmp/secret.key), data (settings.keyFile /tmp/secret.key), swapcrypt (settings.keyFile /run/swap.key), inner (no key file: name it)"},
		{map[string]string{"cryptd": key("o", "o")}, `disk key for cryptd: host vault's layout has no LUKS device "cryptd"`},
		{map[string]string{"crypted": key("a", "a"), "/tmp/secret.key": key("b", "b")}, "two disk keys for the LUKS device crypted (one given for crypted)"},
	} {
		_, err := newDiskoLayout(spec, DiskOptions{KeyFiles: tc.keys}, nil)
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.keys, err, tc.want)
		}
	}
}

// TestDiskKeysZFS: a ZFS encryption root takes its key by its name
// (POOL/DATASET) or, as nixos-anywhere gives it, by the path its
// keylocation names (file://PATH); a key for neither is refused by name.
func TestDiskKeysZFS(t *testing.T) {
	layout := `{"disk": {
  "d1": {"type": "disk", "device": "/dev/vdb", "content": {"type": "gpt", "partitions": {"zfs": {"size": "100%", "content": {"type": "zfs", "pool": "tank"}}}}},
  "d2": {"type": "disk", "device": "/dev/vdc", "content": {"type": "gpt", "partitions": {"zfs": {"size": "100%", "content": {"type": "zfs", "pool": "tank"}}}}}},
 "zpool": {"tank": {"type": "zpool", "mode": "mirror", "rootFsOptions": {"mountpoint": "none"}, "datasets": {
  "secret": {"type": "zfs_fs", "mountpoint": "/srv/secret", "options": {"encryption": "aes-256-gcm", "keyformat": "passphrase", "keylocation": "file:///run/agenix/tank-key"}},
  "plain": {"type": "zfs_fs", "mountpoint": "/srv/plain"}}}}}`
	spec := &Spec{Name: "tank", Disko: json.RawMessage(layout)}
	key := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(key, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tank/secret", "/run/agenix/tank-key"} {
		d, err := newDiskoLayout(spec, DiskOptions{KeyFiles: map[string]string{name: key}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d.keys) != 1 || string(d.keys["tank/secret"]) != "correct horse battery staple\n" {
			t.Errorf("%s: keys %q, want tank/secret's only", name, d.keys)
		}
	}
	for name, want := range map[string]string{
		"tank/plain":     `disk key for tank/plain: host tank's layout has no LUKS device "tank/plain"` + "\nhint: its layout has no LUKS device or ZFS encryption root of that name: drop the key",
		"/run/other.key": "disk key for /run/other.key: no LUKS device of host tank's layout reads /run/other.key",
	} {
		_, err := newDiskoLayout(spec, DiskOptions{KeyFiles: map[string]string{name: key}}, nil)
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
}
