package sshtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleetnix/fleet/test/testenv"
)

// GitServer is a second sshd acting as a private git server: a bare
// repository with one commit, reachable only with deploy keys that are
// restricted to git-shell.
type GitServer struct {
	*Server
	Repo   string // path of the bare repository
	URL    string // ssh://root@127.0.0.1:PORT/PATH.git
	Commit string // the commit its main branch points at
	File   string // name of the one file committed ("README")
}

// GitShellLine restricts an authorized_keys line to git-shell: no shell, no
// forwarding, no pty (`restrict,command="git-shell -c ..."`).
func GitShellLine(keyLine string) string {
	return `restrict,command="git-shell -c \"$SSH_ORIGINAL_COMMAND\"" ` + strings.TrimSpace(keyLine)
}

// StartGitServer starts a git server whose authorized_keys hold each deploy
// key restricted to git-shell. It is stopped when t ends.
func StartGitServer(t testenv.TB, deployKeys ...Key) *GitServer {
	t.Helper()
	for _, bin := range []string{"git", "git-shell"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install git (.ci/run does)", bin)
		}
	}
	var lines []string
	for _, k := range deployKeys {
		lines = append(lines, GitShellLine(k.Line))
	}
	s := Start(t, Options{AuthorizedKeys: lines, NoAgentForwarding: true})
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	repo := filepath.Join(dir, "secrets.git")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(),
			"GIT_AUTHOR_NAME=fleet test", "GIT_AUTHOR_EMAIL=test@fleet.invalid",
			"GIT_COMMITTER_NAME=fleet test", "GIT_COMMITTER_EMAIL=test@fleet.invalid",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("fleet test secrets repository\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("-C", work, "add", "README")
	git("-C", work, "commit", "-q", "-m", "first")
	git("clone", "-q", "--bare", work, repo)
	return &GitServer{
		Server: s,
		Repo:   repo,
		URL:    fmt.Sprintf("ssh://%s@%s:%d%s", s.User, s.Host, s.Port, repo),
		Commit: git("-C", repo, "rev-parse", "main"),
		File:   "README",
	}
}
