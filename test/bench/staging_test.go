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

// TestStaging: a flake-like tree (2,000 files, ~50 MB) and a big file to
// an sshd, fleet's upload against rsync, scp, tar over ssh, and the limit,
// ssh 'cat > /dev/null' of the same bytes. Every contender opens its own
// connection, as a user's command would. Destinations are on tmpfs so the
// disk does not decide.
//
// Twice: on the loopback with a 1 GiB file, where every byte costs CPU on
// the same 2 cores at both ends, and across a shaped 1 Gbit/s link to a
// network namespace with a 256 MiB file, as to an installer on a LAN.
// FLEET_BENCH_STAGING=link measures only the link.
func TestStaging(t *testing.T) {
	Require(t)
	key := sshtest.NewKey(t, "ed25519", "", "bench")
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	Tree(t, tree, 2000, 50<<20)
	big := func(size int) string {
		p := filepath.Join(src, fmt.Sprintf("big-%d", size))
		if out, err := exec.Command("head", "-c", strconv.Itoa(size), "/dev/urandom").Output(); err != nil {
			t.Fatal(err)
		} else if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	if os.Getenv("FLEET_BENCH_STAGING") != "link" {
		srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}})
		Record(t, staging(t, key, srv, tree, big(1<<30), 1<<30, "a loopback sshd"))
	}

	link := NewLink(t, "1gbit")
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{key.Line}, NetNS: link.NS, ListenAddress: link.Peer})
	Record(t, staging(t, key, srv, tree, big(256<<20), 256<<20, link.String()))
}

// staging measures the tree and the file to srv and returns their tables.
func staging(t *testing.T, key sshtest.Key, srv *sshtest.Server, tree, big string, bigSize int64, where string) string {
	kh := srv.WriteKnownHosts(t)
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
		{Name: "fleet (tar stream over one session)", Run: fleet(func(c *remote.Client) error {
			return remote.UploadTree(context.Background(), c, tree, dst+"/t", remote.TreeOptions{})
		}), Check: func() error {
			if d := du(dst + "/t"); d != treeBytes {
				return fmt.Errorf("the tree arrived with %d bytes, want %d", d, treeBytes)
			}
			return nil
		}},
		{Name: "rsync -a -e ssh", Run: func() error {
			return sh("rsync -a -e " + remote.ShellQuote(sshCmd) + " " + tree + "/ " + host + ":" + dst + "/t/")
		}},
		{Name: "scp -r", Run: func() error {
			return sh("scp -q -r " + remote.ShellJoin(scpArgs) + " " + tree + " " + host + ":" + dst + "/t")
		}},
		{Name: "tar c \\| ssh tar x", Run: func() error {
			return sh("tar -C " + tree + " -cf - . | " + sshCmd + " " + host + " 'mkdir -p " + dst + "/t && tar -C " + dst + "/t -xf -'")
		}},
		{Name: "limit: ssh cat > /dev/null", Run: func() error { return sh("tar -C " + tree + " -cf - . | " + sshCmd + " " + host + " 'cat > /dev/null'") }},
	})
	section := Table(fmt.Sprintf("Staging a flake-like tree (2,000 files, %.0f MB) to %s", float64(treeBytes)/1e6, where), rows, treeBytes)

	rows = Measure(t, clean, []Contender{
		{Name: "fleet (atomic, sha256-checked)", Run: fleet(func(c *remote.Client) error {
			return remote.UploadFile(context.Background(), c, big, dst+"/big", remote.UploadOptions{Mode: 0o644})
		}), Check: func() error {
			if d := du(dst + "/big"); d != bigSize {
				return fmt.Errorf("the file arrived with %d bytes, want %d", d, bigSize)
			}
			return nil
		}},
		{Name: "rsync -a -e ssh", Run: func() error {
			return sh("rsync -a -e " + remote.ShellQuote(sshCmd) + " " + big + " " + host + ":" + dst + "/big")
		}},
		{Name: "scp", Run: func() error {
			return sh("scp -q " + remote.ShellJoin(scpArgs) + " " + big + " " + host + ":" + dst + "/big")
		}},
		{Name: "cat \\| ssh 'cat > file'", Run: func() error { return sh(sshCmd + " " + host + " 'cat > " + dst + "/big' < " + big) }},
		{Name: "limit: ssh cat > /dev/null", Run: func() error { return sh(sshCmd + " " + host + " 'cat > /dev/null' < " + big) }},
	})
	return section + "\n" + Table(fmt.Sprintf("Staging one %s file to %s", sizeName(bigSize), where), rows, bigSize)
}

func sizeName(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
