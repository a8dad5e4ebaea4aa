// Package sshtest starts real OpenSSH daemons and agents for tests.
//
// [Start] runs /usr/sbin/sshd on 127.0.0.1 on a free port with its own host
// key, config and authorized_keys, inside a private mount namespace (so the
// /run/sshd it requires never touches the host's /run). [StartAgent] runs a
// real ssh-agent holding the given keys. Both are stopped by t.Cleanup, and
// every SSH test in the project uses them instead of an in-process fake.
//
// Assumptions: root (for the mount namespace; tests skip with the reason
// otherwise), OpenSSH server and client installed (.ci/run installs them).
package sshtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetnix/fleet/test/testenv"

	"golang.org/x/crypto/ssh"
)

// SSHD is the path of the OpenSSH server binary.
var SSHD = "/usr/sbin/sshd"

// Options shape a test server.
type Options struct {
	// AuthorizedKeys are authorized_keys lines (options allowed).
	AuthorizedKeys []string
	// Config holds extra sshd_config lines, appended after the defaults.
	Config []string
	// NoAgentForwarding turns AllowAgentForwarding off.
	NoAgentForwarding bool
	// NetNS runs sshd in this network namespace (made by the test, see
	// ip-netns(8)), listening on ListenAddress there; both or neither.
	NetNS, ListenAddress string
	// Users are login users besides the test's own, visible only to this
	// server (see [User]).
	Users []User
	// PasswordAuth turns PasswordAuthentication on (sshd checks
	// /etc/shadow itself, without PAM).
	PasswordAuth bool
	// KbdInteractive turns keyboard-interactive on, through PAM with
	// pam_unix alone (UsePAM yes): without PAM, OpenSSH offers no
	// keyboard-interactive device on Linux.
	KbdInteractive bool
}

// Server is a running sshd.
type Server struct {
	Dir            string        // its private directory (config, keys, log)
	Host           string        // "127.0.0.1"
	Port           int           // the port it listens on
	User           string        // the user tests log in as (the current user)
	HostKey        ssh.PublicKey // its host public key
	HostKeyFile    string        // path of the host private key
	AuthorizedKeys string        // path of its authorized_keys file
	LogFile        string        // sshd's log (-E)

	accounts []account
	binds    [][2]string // private /etc files bind-mounted in sshd's namespace
	cmd      *exec.Cmd
	exited   chan error // receives sshd's exit
}

// Addr is "127.0.0.1:PORT" (or ListenAddress:PORT).
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Target is "user@127.0.0.1:PORT", the form fleet's --target takes.
func (s *Server) Target() string { return s.User + "@" + s.Addr() }

// Fingerprint is the host key's SHA256 fingerprint ("SHA256:...").
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.HostKey) }

// KnownHostsLine is the known_hosts line for this server.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[%s]:%d %s", s.Host, s.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))))
}

// WriteKnownHosts writes a known_hosts file holding this server's key and
// returns its path.
func (s *Server) WriteKnownHosts(t testenv.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Authorize appends an authorized_keys line.
func (s *Server) Authorize(t testenv.TB, line string) {
	t.Helper()
	f, err := os.OpenFile(s.AuthorizedKeys, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.TrimSpace(line) + "\n"); err != nil {
		t.Fatal(err)
	}
}

// Log returns what sshd has logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// AcceptedConnections counts the logins sshd accepted so far, by any
// method.
func (s *Server) AcceptedConnections() int {
	return len(acceptedLine.FindAllString(s.Log(), -1))
}

// acceptedLine is sshd's log line for a login: "Accepted publickey for
// root from ...", "Accepted password for nixos from ...".
var acceptedLine = regexp.MustCompile(`Accepted [a-z/-]+ for \S+ from `)

// RequireRoot skips t unless the test runs as root, saying why.
func RequireRoot(t testenv.TB) {
	t.Helper()
	testenv.Root(t, "sshd runs in a private mount namespace (CI runs as root)")
}

// Start starts an sshd and stops it when t ends.
func Start(t testenv.TB, opts Options) *Server {
	t.Helper()
	RequireRoot(t)
	for _, bin := range []string{SSHD, "ssh-keygen", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install openssh-server, openssh-client and util-linux (.ci/run does)", bin)
		}
	}
	if (opts.NetNS == "") != (opts.ListenAddress == "") {
		t.Fatal("sshtest: NetNS and ListenAddress go together")
	}
	host := "127.0.0.1"
	if opts.ListenAddress != "" {
		host = opts.ListenAddress
	}
	dir := t.TempDir()
	s := &Server{
		Dir:            dir,
		Host:           host,
		User:           currentUser(t),
		HostKeyFile:    filepath.Join(dir, "ssh_host_ed25519_key"),
		AuthorizedKeys: filepath.Join(dir, "authorized_keys"),
		LogFile:        filepath.Join(dir, "sshd.log"),
	}
	keygen(t, s.HostKeyFile, "", "test-host")
	pub, err := os.ReadFile(s.HostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if s.HostKey, _, _, _, err = ssh.ParseAuthorizedKey(pub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.AuthorizedKeys, []byte(strings.Join(opts.AuthorizedKeys, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.binds = s.setupUsers(t, opts)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.start(t, opts); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("start sshd: %v\n%s", lastErr, s.Log())
	return nil
}

func (s *Server) start(t testenv.TB, opts Options) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	fwd := "yes"
	if opts.NoAgentForwarding {
		fwd = "no"
	}
	cfg := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress " + s.Host,
		"HostKey " + s.HostKeyFile,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + s.AuthorizedKeys,
		"UsePAM " + yesNo(opts.KbdInteractive),
		"StrictModes no",
		"PasswordAuthentication " + yesNo(opts.PasswordAuth),
		"KbdInteractiveAuthentication " + yesNo(opts.KbdInteractive),
		"PubkeyAuthentication yes",
		"PermitRootLogin yes",
		"AllowAgentForwarding " + fwd,
		"AllowTcpForwarding yes",
		"MaxSessions 100",
		"MaxStartups 200",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
	}
	cfg = append(cfg, opts.Config...)
	if len(opts.Users) > 0 {
		// The test's own user keeps the server's file; the others have
		// theirs in their home, as on a real host. Match blocks go last.
		var names []string
		for _, a := range s.accounts {
			names = append(names, a.Name)
		}
		cfg = append(cfg, "Match User "+strings.Join(names, ","), "  AuthorizedKeysFile .ssh/authorized_keys")
	}
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	_ = os.Remove(s.LogFile)
	script := "mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -m 0755 /run/sshd"
	for _, b := range s.binds {
		script += fmt.Sprintf(" && mount --bind %s %s", b[0], b[1])
	}
	script += fmt.Sprintf(" && exec %s -D -e -E %s -f %s", SSHD, s.LogFile, cfgPath)
	args := []string{"unshare", "-m", "--propagation", "private", "sh", "-c", script}
	if opts.NetNS != "" {
		args = append([]string{"ip", "netns", "exec", opts.NetNS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("sshd exited: %v: %s %s", err, out.String(), s.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond); err == nil {
			c.Close()
			if strings.Contains(s.Log(), "Server listening") {
				s.cmd, s.exited = cmd, exited
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return errors.New("sshd did not start listening within 10s")
}

// stop kills sshd and every session it started.
func (s *Server) stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func currentUser(t testenv.TB) string {
	if u := os.Getenv("USER"); u != "" && os.Geteuid() != 0 {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// KillConnections kills the sshd processes serving the current
// connections (not the listener), as a dropped network would: clients
// see their connection die mid-command.
func (s *Server) KillConnections() int { return s.SignalConnections(syscall.SIGKILL) }

// SignalConnections sends sig to the sshd processes serving the current
// connections; SIGSTOP makes a peer that has silently gone away.
func (s *Server) SignalConnections(sig syscall.Signal) int {
	if s.cmd == nil {
		return 0
	}
	main := s.cmd.Process.Pid
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == main {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name: state ppid ... Each connection's
		// sshd is a child of the listener (in a session of its own).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(main) {
			if syscall.Kill(pid, sig) == nil {
				n++
			}
		}
	}
	return n
}

// Root is a path to the server's view of the filesystem (its private mount
// namespace): mounts made through its sessions are visible under it.
func (s *Server) Root() string { return fmt.Sprintf("/proc/%d/root", s.cmd.Process.Pid) }
