package sshtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestGitServerDeployKeyIsGitOnly(t *testing.T) {
	deploy := NewKey(t, "ed25519", "", "deploy")
	g := StartGitServer(t, deploy)
	kh := g.WriteKnownHosts(t)
	sshCmd := "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile=" + kh + " -o StrictHostKeyChecking=yes -i " + deploy.Path
	dir := filepath.Join(t.TempDir(), "clone")
	cmd := exec.Command("git", "clone", "-q", g.URL, dir)
	cmd.Env = append(os.Environ(), "GIT_SSH_COMMAND="+sshCmd, "SSH_AUTH_SOCK=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clone with the deploy key: %v\n%s", err, out)
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil || strings.TrimSpace(string(head)) != g.Commit {
		t.Fatalf("cloned HEAD %q, want %s (%v)", head, g.Commit, err)
	}
	// The key gets no shell.
	sh := exec.Command("sh", "-c", sshCmd+" -p "+itoa(g.Port)+" "+g.User+"@"+g.Host+" id")
	sh.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	out, err := sh.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unrecognized command") {
		t.Fatalf("shell command with the deploy key: %v\n%s", err, out)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
