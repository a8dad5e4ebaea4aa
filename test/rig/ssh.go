package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/testenv"
)

// waitSSH polls until the control channel runs `true` and the
// installer's (or installed system's) sshd presents vm.HostKey.
func (vm *VM) waitSSH(ctx context.Context) error {
	var last string
	for {
		select {
		case <-vm.exited:
			return fmt.Errorf("%w before SSH came up: %v", ErrExited, vm.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("no SSH login within %s (last: %s): %w", vm.opts.BootTimeout, last, ctx.Err())
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		out, err := vm.Command(cctx, "true").CombinedOutput()
		cancel()
		if err == nil {
			var key ssh.PublicKey
			if key, err = vm.presentedKey(ctx); err == nil {
				if pinned := vm.PinnedKey(); !bytes.Equal(key.Marshal(), pinned.Marshal()) {
					return fmt.Errorf("the VM's sshd presented %s, not the pinned %s", ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(pinned))
				}
				return nil
			}
			last = err.Error()
		} else {
			last = strings.TrimSpace(string(out))
			if strings.Contains(last, "REMOTE HOST IDENTIFICATION HAS CHANGED") || strings.Contains(last, "Host key verification failed") {
				return fmt.Errorf("the VM's control channel answered with a host key other than %s: %s", ssh.FingerprintSHA256(vm.Image.ControlHostKey), last)
			}
		}
		time.Sleep(time.Second)
	}
}

var errGotKey = errors.New("host key received")

// dialSSHD connects to the sshd on vm.Port, with a deadline of timeout
// on the connection, and returns the host key algorithms to ask for:
// those of vm.HostKey.
func (vm *VM) dialSSHD(ctx context.Context, timeout time.Duration) (net.Conn, string, []string, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.Port))
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, "", nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	algos := []string{vm.PinnedKey().Type()}
	if algos[0] == ssh.KeyAlgoRSA {
		algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return conn, addr, algos, nil
}

// presentedKey is the host key the sshd on vm.Port presents for
// vm.HostKey's algorithm (the handshake stops there: nothing logs in).
func (vm *VM) presentedKey(ctx context.Context) (ssh.PublicKey, error) {
	conn, addr, algos, err := vm.dialSSHD(ctx, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var got ssh.PublicKey
	_, _, _, err = ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              "rig-probe",
		HostKeyAlgorithms: algos,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			got = k
			return errGotKey
		},
	})
	if got == nil {
		return nil, fmt.Errorf("sshd on port %d: %w", vm.Port, err)
	}
	return got, nil
}

// KnownHosts writes a known_hosts file pinning the installer's (or the
// installed system's) sshd on vm.Port to the current host key, and
// returns its path: for the OpenSSH client a test points at it.
func (vm *VM) KnownHosts() string {
	p := filepath.Join(vm.Dir, fmt.Sprintf("known_hosts-%d", vm.bootCount()))
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", vm.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(vm.PinnedKey()))))
	_ = os.WriteFile(p, []byte(line), 0o600)
	return p
}

// controlKnownHosts pins the control channel's host key.
func (vm *VM) controlKnownHosts() string {
	p := filepath.Join(vm.Dir, fmt.Sprintf("control_known_hosts-%d", vm.ControlPort))
	if _, err := os.Stat(p); err != nil {
		line := fmt.Sprintf("[127.0.0.1]:%d %s\n", vm.ControlPort, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(vm.Image.ControlHostKey))))
		_ = os.WriteFile(p, []byte(line), 0o600)
	}
	return p
}

// Fingerprint is the pinned host key's SHA256 fingerprint.
func (vm *VM) Fingerprint() string { return ssh.FingerprintSHA256(vm.PinnedKey()) }

// Target is "USER@127.0.0.1:PORT", the installer's sshd as a person logs
// in there: root, or nixos for the iso profile ([Image.Login]).
func (vm *VM) Target() string { return fmt.Sprintf("%s@127.0.0.1:%d", vm.Image.Login, vm.Port) }

// SSHArgs are OpenSSH client arguments that log in as root over the rig's
// control channel with the operator key and the pinned control host key;
// append "--" and a command.
//
// extra come first, so they override the defaults (ssh keeps the first
// value of an option).
func (vm *VM) SSHArgs(extra ...string) []string {
	return vm.clientArgs(vm.ControlPort, vm.controlKnownHosts(), "root", extra)
}

// clientArgs are OpenSSH client arguments for user@127.0.0.1:port with
// the operator key, pinned by knownHosts only; extra first.
func (vm *VM) clientArgs(port int, knownHosts, user string, extra []string) []string {
	args := append(append([]string{}, extra...),
		"-F", "none", "-p", strconv.Itoa(port),
		"-i", vm.Identity,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=5",
		"-o", "LogLevel=ERROR",
	)
	return append(args, user+"@127.0.0.1")
}

// Command is an ssh command running args (joined by spaces, as ssh does)
// on the VM as root, over the control channel; set Env (e.g.
// SSH_AUTH_SOCK with "-A" in extra) or Stdin on it before running.
func (vm *VM) Command(ctx context.Context, args ...string) *exec.Cmd {
	return vm.CommandWith(ctx, nil, args...)
}

// CommandWith is [VM.Command] with extra ssh client arguments (like -A).
func (vm *VM) CommandWith(ctx context.Context, sshArgs []string, args ...string) *exec.Cmd {
	a := append(vm.SSHArgs(sshArgs...), "--")
	cmd := exec.CommandContext(ctx, "ssh", append(a, args...)...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	return cmd
}

// Run runs a shell command on the VM as root and returns its stdout; a
// failure carries stderr.
func (vm *VM) Run(ctx context.Context, args ...string) (string, error) {
	cmd := vm.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("vm: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// MustRun is [VM.Run] that fails t.
func (vm *VM) MustRun(t testenv.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := vm.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// LoginArgs are OpenSSH client arguments that log in to the installer's
// (or installed system's) own sshd on vm.Port as user, with the operator
// key and the pinned host key: what fleet faces, as opposed to
// [VM.SSHArgs]'s control channel. Append "--" and a command.
func (vm *VM) LoginArgs(user string, extra ...string) []string {
	return vm.clientArgs(vm.Port, vm.KnownHosts(), user, extra)
}

// Dial logs in to the sshd on vm.Port as user with auth (e.g.
// [PasswordAuth]), with the pinned host key, using Go's SSH client.
func (vm *VM) Dial(ctx context.Context, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	conn, addr, algos, err := vm.dialSSHD(ctx, 20*time.Second)
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              user,
		Auth:              auth,
		HostKeyAlgorithms: algos,
		HostKeyCallback:   ssh.FixedHostKey(vm.PinnedKey()),
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// PasswordAuth answers password with both methods a NixOS installer's
// sshd offers: password and keyboard-interactive (PAM's prompt).
func PasswordAuth(password string) []ssh.AuthMethod {
	return []ssh.AuthMethod{
		ssh.Password(password),
		ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = password
			}
			return answers, nil
		}),
	}
}
