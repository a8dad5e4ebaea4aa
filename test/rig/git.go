package rig

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/test/nixtest"
	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// GuestHost is the host's address as the VM sees it (qemu user networking
// forwards it to the host's 127.0.0.1).
const GuestHost = "10.0.2.2"

// GitServer is a private git server on the host's loopback: an OpenSSH
// sshd in a private mount namespace (see [sshtest.Start]) whose only
// authorized key is the deploy key, restricted to git-shell.
type GitServer struct {
	*sshtest.Server
	Root string // directory holding the bare repositories
}

// StartGitServer starts a git server that accepts only deployKey (an
// authorized_keys public key line) and stops it when t ends.
func StartGitServer(t testenv.TB, deployKey string) *GitServer {
	t.Helper()
	if _, err := exec.LookPath("git-shell"); err != nil {
		t.Fatal("git-shell not found: install git")
	}
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{sshtest.GitShellLine(deployKey)}})
	return &GitServer{Server: srv, Root: t.TempDir()}
}

// AddRepo creates the bare repository name.git holding files (path ->
// content) in one commit on branch main, and returns its commit id.
func (g *GitServer) AddRepo(t testenv.TB, name string, files map[string]string) string {
	t.Helper()
	work := t.TempDir()
	for p, content := range files {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nixtest.Git(t, work, "init", "-q", "-b", "main")
	nixtest.Git(t, work, "add", "-A")
	nixtest.Git(t, work, "commit", "-q", "-m", "rig: "+name)
	nixtest.Run(t, g.Root, nil, "git", "clone", "-q", "--bare", work, g.RepoPath(name))
	return strings.TrimSpace(nixtest.Git(t, work, "rev-parse", "HEAD"))
}

// RepoPath is the bare repository's path on the host.
func (g *GitServer) RepoPath(name string) string { return filepath.Join(g.Root, name+".git") }

// GuestURL is the repository's URL as the VM reaches it.
func (g *GitServer) GuestURL(name string) string {
	return fmt.Sprintf("ssh://%s@%s:%d%s", g.User, GuestHost, g.Port, g.RepoPath(name))
}

// GuestKnownHostsLine pins the server's host key under the address the VM
// uses.
func (g *GitServer) GuestKnownHostsLine() string {
	return strings.Replace(g.KnownHostsLine(), "[127.0.0.1]", "["+GuestHost+"]", 1)
}
