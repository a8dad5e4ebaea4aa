package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fleetnix/fleet/remote"
	"github.com/fleetnix/fleet/test/sshtest"
)

// TestStaging: a flake-like tree (2,000 files, ~50 MB) and a 1 GiB file to
// a loopback sshd, fleet's upload against rsync, scp, tar over ssh, and the
// limit, ssh 'cat > /dev/null' of the same bytes. Every contender opens its
// own connection, as a user's command would. Destinations are on tmpfs so
// the disk does not decide.
func TestStaging(t *testing.T) {
	Require(t)
	key := sshtest.NewKey(t, "ed25519", "", "bench")
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}})
	kh := srv.WriteKnownHosts(t)
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	Tree(t, tree, 2000, 50<<20)
	big := filepath.Join(src, "big")
	if out, err := exec.Command("head", "-c", strconv.Itoa(1<<30), "/dev/urandom").Output(); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(big, out, 0o644); err != nil {
		t.Fatal(err)
	}
	dst, err := os.MkdirTemp("/dev/shm", "fleet-bench-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dst) })
	clean := func() { os.RemoveAll(dst); os.MkdirAll(dst, 0o755) }
	sshArgs := []string{"-F", "/dev/null", "-i", key.Path, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", strconv.Itoa(srv.Port)}
	sshCmd := "ssh " + remote.ShellJoin(sshArgs)
	scpArgs := []string{"-F", "/dev/null", "-i", key.Path, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-P", strconv.Itoa(srv.Port)}
	host := srv.User + "@" + srv.Host
	sh := func(script string) error {
		out, err := exec.Command("sh", "-c", script).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	opts := remote.Options{HostKey: remote.HostKeyPolicy{Pin: srv.Fingerprint()}, Auth: remote.Auth{IdentityFiles: []string{key.Path}, AgentSocket: "none"}}
	target := remote.Target{User: srv.User, Host: srv.Host, Port: srv.Port}
	fleet := func(up func(c *remote.Client) error) func() error {
		return func() error {
			c, err := remote.Dial(context.Background(), target, opts)
			if err != nil {
				return err
			}
			defer c.Close()
			return up(c)
		}
	}
	du := func(p string) int64 {
		var n int64
		filepath.Walk(p, func(_ string, fi os.FileInfo, _ error) error {
			if fi != nil && fi.Mode().IsRegular() {
				n += fi.Size()
			}
			return nil
		})
		return n
	}

	treeBytes := du(tree)
	rows := Measure(t, clean, []Contender{
		{"fleet (tar stream over one session)", fleet(func(c *remote.Client) error {
			return remote.UploadTree(context.Background(), c, tree, dst+"/t", remote.TreeOptions{})
		})},
		{"rsync -a -e ssh", func() error {
			return sh("rsync -a -e " + remote.ShellQuote(sshCmd) + " " + tree + "/ " + host + ":" + dst + "/t/")
		}},
		{"scp -r", func() error {
			return sh("scp -q -r " + remote.ShellJoin(scpArgs) + " " + tree + " " + host + ":" + dst + "/t")
		}},
		{"tar c \\| ssh tar x", func() error {
			return sh("tar -C " + tree + " -cf - . | " + sshCmd + " " + host + " 'mkdir -p " + dst + "/t && tar -C " + dst + "/t -xf -'")
		}},
		{"limit: ssh cat > /dev/null", func() error { return sh("tar -C " + tree + " -cf - . | " + sshCmd + " " + host + " 'cat > /dev/null'") }},
	})
	section := Table(fmt.Sprintf("Staging a flake-like tree (2,000 files, %.0f MB) to a loopback sshd", float64(treeBytes)/1e6), rows, treeBytes)

	rows = Measure(t, clean, []Contender{
		{"fleet (atomic, sha256-checked)", fleet(func(c *remote.Client) error {
			return remote.UploadFile(context.Background(), c, big, dst+"/big", remote.UploadOptions{Mode: 0o644})
		})},
		{"rsync -a -e ssh", func() error {
			return sh("rsync -a -e " + remote.ShellQuote(sshCmd) + " " + big + " " + host + ":" + dst + "/big")
		}},
		{"scp", func() error {
			return sh("scp -q " + remote.ShellJoin(scpArgs) + " " + big + " " + host + ":" + dst + "/big")
		}},
		{"cat \\| ssh 'cat > file'", func() error { return sh(sshCmd + " " + host + " 'cat > " + dst + "/big' < " + big) }},
		{"limit: ssh cat > /dev/null", func() error { return sh(sshCmd + " " + host + " 'cat > /dev/null' < " + big) }},
	})
	section += "\n" + Table("Staging one 1 GiB file to a loopback sshd", rows, 1<<30)
	Record(t, section)
}
