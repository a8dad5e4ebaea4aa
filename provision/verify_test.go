package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetnix/fleet/hwconfig"
	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestVerifyAgainstAgenixLayout lays out /run/agenix the way agenix's
// activation does (ramfs at /run/agenix.d, generation 1, symlink), inside
// the test sshd's private mount namespace, and verifies it over SSH.
func TestVerifyAgainstAgenixLayout(t *testing.T) {
	k := sshtest.NewKey(t, "ed25519", "", "op")
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{k.Line}})
	c, err := remote.Dial(context.Background(), remote.Target{User: s.User, Host: s.Host, Port: s.Port}, remote.Options{
		HostKey: remote.HostKeyPolicy{Pin: s.Fingerprint()},
		Auth:    remote.Auth{IdentityFiles: []string{k.Path}, AgentSocket: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	etc := t.TempDir()
	layout := `set -e
mkdir -p /run/agenix.d && mount -t ramfs -o mode=0751 ramfs /run/agenix.d
mkdir -p /run/agenix.d/1
(umask 0377; printf 'sk-openai' > /run/agenix.d/1/openai-key; printf 'user=smb' > /run/agenix.d/1/smb; printf 'wrong' > /run/agenix.d/1/bad)
chmod 0440 /run/agenix.d/1/smb; chgrp nogroup /run/agenix.d/1/smb
ln -sfT /run/agenix.d/1 /run/agenix
mkdir -p ` + etc + `/wg && ln -sfT /run/agenix/smb ` + etc + `/wg/smb.conf
printf 'on-disk' > ` + etc + `/ondisk; ln -sfT ` + etc + `/ondisk /run/agenix/ondisk-link
printf 'k' > ` + etc + `/key; chmod 0600 ` + etc + `/key
printf 'k' > ` + etc + `/loose; chmod 0644 ` + etc + `/loose
`
	if _, err := c.Run(context.Background(), remote.Cmd{Args: []string{"sh", "-c", layout}}); err != nil {
		t.Fatal(err)
	}
	yes := true
	spec := &Spec{Name: "nas", System: "x86_64-linux", IdentityPaths: []string{etc + "/key", etc + "/loose", etc + "/absent"}, Secrets: map[string]Secret{
		"openai-key": {File: "openai-key.age"},
		"smb":        {File: "smb.age", Path: etc + "/wg/smb.conf", Mode: "0440", Owner: "root", Group: "nogroup", Symlink: &yes},
		"bad":        {File: "bad.age", Mode: "0600"},
		"gone":       {File: "gone.age"},
		"ondisk":     {File: "ondisk.age", Path: "/run/agenix/ondisk-link", Mode: "0644"},
	}}
	spec.Normalize()
	want := map[string]string{"openai-key": sum("sk-openai"), "smb": sum("user=smb"), "bad": sum("right"), "gone": sum("x"), "ondisk": sum("on-disk")}
	rep, err := Verify(context.Background(), c, spec, want)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatal("report OK despite broken secrets")
	}
	if rep.AgenixLink != "/run/agenix.d/1" {
		t.Fatalf("/run/agenix -> %q", rep.AgenixLink)
	}
	got := map[string][]string{}
	for _, sc := range rep.Secrets {
		got[sc.Name] = sc.Problems
		if sc.Name == "openai-key" && (!sc.OK || sc.FSType != "ramfs" || sc.Mode != "0400" || sc.Resolved != "/run/agenix.d/1/openai-key" || sc.Content != "match") {
			t.Errorf("openai-key: %+v", sc)
		}
		if sc.Name == "smb" && (!sc.OK || sc.Resolved != "/run/agenix.d/1/smb") {
			t.Errorf("smb through a custom-path symlink: %+v", sc)
		}
	}
	wantProblems := map[string][]string{
		"openai-key": {},
		"smb":        {},
		"bad":        {"mode 0400, want 0600", "content differs from the local decryption (sha256)"},
		"gone":       {"missing"},
		"ondisk":     {"resolves to " + etc + "/ondisk, outside /run/agenix.d/", "on " + fsType(t, c, etc) + ", not ramfs or tmpfs: the plaintext is on disk"},
	}
	if !reflect.DeepEqual(got, wantProblems) {
		t.Fatalf("problems:\n%q\nwant\n%q", got, wantProblems)
	}
	idp := map[string][]string{}
	for _, ic := range rep.Identities {
		idp[ic.Path] = ic.Problems
	}
	if !reflect.DeepEqual(idp, map[string][]string{etc + "/key": {}, etc + "/loose": {"mode 0644, want 0600"}, etc + "/absent": {}}) {
		t.Fatalf("identities: %q", idp)
	}
	// The same command found this machine's root (the spec declares no
	// initrd modules: reported, not checked).
	if rep.Initrd == nil || rep.Initrd.Declared || !rep.Initrd.OK || rep.Initrd.Root == "" {
		t.Fatalf("initrd: %+v", rep.Initrd)
	}
}

func fsType(t *testing.T, c *remote.Client, dir string) string {
	out, err := remote.Output(context.Background(), c, "stat", "-f", "-c", "%T", dir)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestVerifyInitrd: the root's drivers against the declared initrd
// modules, and what the first boot's failure says (the rig tests run it
// against real machines: TestInstallOnRig, TestInstallAarch64OnRig).
func TestVerifyInitrd(t *testing.T) {
	root := hwconfig.Root{Source: "/dev/vda2", Disks: []string{"vda"}, Modules: []string{"virtio_blk", "virtio_pci"}}
	if c := checkInitrd(root, nil); c.Declared || !c.OK || len(c.Missing) != 0 {
		t.Fatalf("nothing declared: %+v", c)
	}
	if c := checkInitrd(root, []string{"virtio-pci", "virtio_blk"}); !c.Declared || !c.OK {
		t.Fatalf("all declared: %+v", c)
	}
	c := checkInitrd(root, []string{"ahci", "virtio_pci"})
	if c.OK || !reflect.DeepEqual(c.Missing, []string{"virtio_blk"}) {
		t.Fatalf("virtio_blk not declared: %+v", c)
	}
	rep := &Report{Secrets: []SecretCheck{{Name: "a", OK: true}}, Initrd: c}
	want := "the root /dev/vda2 is on vda, driven by virtio_blk, virtio_pci, but the configuration's boot.initrd.availableKernelModules lacks virtio_blk: an initrd built from it cannot find the root\nhint: generate the host's hardware configuration (fleet install --generate-hardware-config nixos-generate-config PATH) or add them to boot.initrd.availableKernelModules"
	if err := rep.problem(); err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}
