package sshtest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fleetnix/fleet/test/testenv"
)

// Agent is a running OpenSSH ssh-agent.
type Agent struct {
	Socket string // its SSH_AUTH_SOCK
	cmd    *exec.Cmd
}

// Env is the environment entry pointing at the agent.
func (a *Agent) Env() string { return "SSH_AUTH_SOCK=" + a.Socket }

// Add loads a key into the agent with ssh-add.
func (a *Agent) Add(t testenv.TB, k Key) {
	t.Helper()
	cmd := exec.Command("ssh-add", k.Path)
	cmd.Env = append(os.Environ(), a.Env())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add %s: %v: %s", k.Path, err, out)
	}
}

// List returns `ssh-add -l` output.
func (a *Agent) List(t testenv.TB) string {
	t.Helper()
	cmd := exec.Command("ssh-add", "-l")
	cmd.Env = append(os.Environ(), a.Env())
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// StartAgent starts ssh-agent holding keys and stops it when t ends.
func StartAgent(t testenv.TB, keys ...Key) *Agent {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Fatal("ssh-agent not found: install openssh-client (.ci/run does)")
	}
	// Unix socket paths are limited to 108 bytes: keep it short.
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{Socket: filepath.Join(dir, "s")}
	cmd := exec.Command("ssh-agent", "-D", "-a", a.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.cmd = cmd
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", a.Socket); err == nil {
			c.Close()
			break
		}
		if i > 500 {
			t.Fatalf("ssh-agent did not start: %s", strings.TrimSpace(out.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range keys {
		a.Add(t, k)
	}
	return a
}
