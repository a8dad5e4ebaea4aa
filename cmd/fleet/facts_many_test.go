package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetnix/fleet/test/sshtest"
)

// factsFleet is three real sshds, each with its own host key, that the
// operator key and a passphrase-protected key may log in to, and a
// known_hosts file holding the three keys.
type factsFleet struct {
	srvs   []*sshtest.Server
	key    sshtest.Key
	locked sshtest.Key
	known  string
}

func startFactsFleet(t *testing.T) *factsFleet {
	t.Helper()
	f := &factsFleet{
		key:    sshtest.NewKey(t, "ed25519", "", "operator"),
		locked: sshtest.NewKey(t, "ed25519", "secret words", "locked"),
	}
	var lines []string
	for i := 0; i < 3; i++ {
		s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line, f.locked.Line}})
		f.srvs = append(f.srvs, s)
		lines = append(lines, s.KnownHostsLine())
	}
	f.known = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f.known, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No agent: only the -i key is offered.
	t.Setenv("SSH_AUTH_SOCK", "")
	return f
}

// runFleet runs fleet in process and returns its exit code and streams.
func runFleet(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	p, err := sshtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFactsManyJSON: three hosts and an unreachable one in the middle. The
// array follows the targets' order, each host reports its own key over one
// connection, the unreachable one carries its error, and the run exits 1
// naming it on stderr.
func TestFactsManyJSON(t *testing.T) {
	f := startFactsFleet(t)
	port := closedPort(t)
	dead := fmt.Sprintf("root@127.0.0.1:%d", port)
	targets := []string{f.srvs[2].Target(), dead, f.srvs[0].Target(), f.srvs[1].Target()}
	args := append([]string{"facts", "--json", "-i", f.key.Path, "--known-hosts", f.known, "--ssh-config", "none"}, targets...)
	code, stdout, stderr := runFleet(t, args...)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFail, stdout, stderr)
	}
	refused := fmt.Sprintf("ssh connection failed: connect to 127.0.0.1:%d: dial tcp 127.0.0.1:%d: connect: connection refused\nhint: is the host up and sshd listening on port %d?", port, port, port)
	wantErr := dead + ": " + refused + "\nerror: facts failed on 1 of 4 targets\n"
	if stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, wantErr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	if len(got) != len(targets) {
		t.Fatalf("%d objects, want %d", len(got), len(targets))
	}
	wantKey := map[string]string{dead: ""}
	for _, s := range f.srvs {
		wantKey[s.Target()] = s.Fingerprint()
	}
	for i, o := range got {
		if o["target"] != targets[i] {
			t.Errorf("object %d: target %v, want %s", i, o["target"], targets[i])
		}
		if targets[i] == dead {
			if len(o) != 2 || o["error"] != refused {
				t.Errorf("object %d: %v, want only target and error %q", i, o, refused)
			}
			continue
		}
		if o["host_key"] != wantKey[targets[i]] {
			t.Errorf("object %d (%s): host_key %v, want %s", i, targets[i], o["host_key"], wantKey[targets[i]])
		}
		if _, ok := o["error"]; ok {
			t.Errorf("object %d (%s): unexpected error %v", i, targets[i], o["error"])
		}
		if o["system"] != "x86_64-linux" || o["host"] == nil {
			t.Errorf("object %d (%s): not the single-target fields: %v", i, targets[i], o)
		}
	}
	for i, s := range f.srvs {
		if n := s.AcceptedConnections(); n != 1 {
			t.Errorf("server %d accepted %d connections, want 1", i, n)
		}
	}
}

// TestFactsManyText: blocks in target order, headed "== TARGET", separated
// by one blank line; each block is what one target alone prints.
func TestFactsManyText(t *testing.T) {
	f := startFactsFleet(t)
	base := []string{"facts", "-i", f.key.Path, "--known-hosts", f.known, "--ssh-config", "none"}
	code, stdout, stderr := runFleet(t, append(base, "--target", f.srvs[1].Target(), f.srvs[0].Target(), f.srvs[2].Target(), "--parallel", "2")...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var want strings.Builder
	for i, s := range []*sshtest.Server{f.srvs[1], f.srvs[0], f.srvs[2]} {
		c, one, e := runFleet(t, append(base, "--target", s.Target())...)
		if c != exitOK {
			t.Fatalf("one target %s: exit %d: %s", s.Target(), c, e)
		}
		if i > 0 {
			want.WriteString("\n")
		}
		want.WriteString("== " + s.Target() + "\n" + one)
	}
	// Memory and the disk table (its rows, and so its column widths) may
	// change between runs (other tests make and remove loop devices on
	// this machine): compare every other line exactly, and that each
	// block has its disk table.
	keep := func(out string) []string {
		var l []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "memory") || strings.HasPrefix(line, "DISK ") || strings.HasPrefix(line, "/dev/") || strings.HasPrefix(line, "  ") {
				continue
			}
			l = append(l, line)
		}
		return l
	}
	gl, wl := keep(stdout), keep(want.String())
	if strings.Join(gl, "\n") != strings.Join(wl, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", stdout, want.String())
	}
	if n := strings.Count(stdout, "\nDISK "); n != 3 {
		t.Fatalf("%d disk tables, want 3:\n%s", n, stdout)
	}
}

// TestFactsManyRefusesPin: a pin names one host, so --host-key with several
// targets is a usage error, and nothing is dialed.
func TestFactsManyRefusesPin(t *testing.T) {
	f := startFactsFleet(t)
	code, stdout, stderr := runFleet(t, "facts", "-i", f.key.Path, "--host-key", f.srvs[0].Fingerprint(), "--ssh-config", "none",
		f.srvs[0].Target(), f.srvs[1].Target(), f.srvs[2].Target())
	want := "error: --host-key pins one host; 3 targets were given\nhint: with several targets use --known-hosts (or --accept-new to trust keys seen for the first time)\n"
	if code != exitUsage || stdout != "" || stderr != want {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit %d and:\n%s", code, stdout, stderr, exitUsage, want)
	}
	for i, s := range f.srvs {
		if n := s.AcceptedConnections(); n != 0 {
			t.Errorf("server %d accepted %d connections, want 0", i, n)
		}
	}
}

// TestFactsManyPassphraseOnce: with an encrypted key and three targets
// dialed at once, the passphrase is asked once and every target is reached.
func TestFactsManyPassphraseOnce(t *testing.T) {
	f := startFactsFleet(t)
	var asked atomic.Int32
	old := askPassphrase
	askPassphrase = func(file string) ([]byte, error) {
		asked.Add(1)
		if file != f.locked.Path {
			return nil, fmt.Errorf("asked for %s, want %s", file, f.locked.Path)
		}
		time.Sleep(200 * time.Millisecond) // a person typing: the other dials wait
		return []byte("secret words"), nil
	}
	t.Cleanup(func() { askPassphrase = old })
	code, stdout, stderr := runFleet(t, "facts", "--json", "-i", f.locked.Path, "--known-hosts", f.known, "--ssh-config", "none",
		f.srvs[0].Target(), f.srvs[1].Target(), f.srvs[2].Target())
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("passphrase asked %d times, want 1", n)
	}
	var got []struct {
		Target  string `json:"target"`
		HostKey string `json:"host_key"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 3 {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
	for i, s := range f.srvs {
		if got[i].Target != s.Target() || got[i].HostKey != s.Fingerprint() {
			t.Errorf("object %d: %+v, want %s with %s", i, got[i], s.Target(), s.Fingerprint())
		}
	}
}

// TestFactsManyDroppedConnection: a host whose connection dies while it is
// gathering fails alone; its host key was verified, so it is reported with
// the error.
func TestFactsManyDroppedConnection(t *testing.T) {
	f := startFactsFleet(t)
	// The third host's facts script hangs until its connection is killed.
	hang := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []string{f.key.Line}, Config: []string{"ForceCommand sleep 30"}})
	kh, err := os.ReadFile(f.known)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.known, append(kh, []byte(hang.KnownHostsLine()+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Kill it once the command runs: sshd logs the session's start.
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(hang.Log(), "Starting session: forced-command") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		hang.KillConnections()
	}()
	targets := []string{f.srvs[0].Target(), hang.Target(), f.srvs[1].Target()}
	code, stdout, stderr := runFleet(t, append([]string{"facts", "--json", "-i", f.key.Path, "--known-hosts", f.known, "--ssh-config", "none"}, targets...)...)
	if code != exitFail {
		t.Fatalf("exit %d, want %d\nstderr:\n%s", code, exitFail, stderr)
	}
	prefix := hang.Target() + ": gather facts: ssh connection failed: gather facts on " + "[127.0.0.1]:" + strconv.Itoa(hang.Port) + ": the connection dropped before the command finished\n"
	if !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, "error: facts failed on 1 of 3 targets\n") {
		t.Errorf("stderr:\n%s\nwant it to start with:\n%s", stderr, prefix)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got) != 3 {
		t.Fatalf("stdout: %v\n%s", err, stdout)
	}
	if got[1]["host_key"] != hang.Fingerprint() || got[1]["error"] == nil || got[1]["system"] != nil {
		t.Errorf("dropped host: %v, want its host key and an error, no facts", got[1])
	}
	for _, i := range []int{0, 2} {
		if got[i]["error"] != nil || got[i]["system"] != "x86_64-linux" {
			t.Errorf("object %d: %v", i, got[i])
		}
	}
}
