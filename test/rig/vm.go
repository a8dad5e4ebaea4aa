package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/fleetnix/fleet/test/sshtest"
	"github.com/fleetnix/fleet/test/testenv"
)

// Options shape a VM.
type Options struct {
	// Disks are the sizes in bytes of the blank target disks (sparse
	// files), attached first: /dev/vda, /dev/vdb, ... with serials
	// fleet-disk0, fleet-disk1, ... (/dev/disk/by-id/virtio-fleet-diskN).
	Disks []int64
	// AuthorizedKeys are extra authorized_keys lines for root, besides the
	// rig's own operator key.
	AuthorizedKeys []string
	// MemoryMiB defaults to 2048, CPUs to 2.
	MemoryMiB, CPUs int
	// BootTimeout bounds qemu start to a working SSH login (default 4 min:
	// TCG on a busy 2-core machine).
	BootTimeout time.Duration
	// RootLabel is the filesystem label of the installed root that a
	// reboot boots from (default "nixos").
	RootLabel string
	// OverlaySize is the size of the writable overlay image (default 4 GiB,
	// sparse).
	OverlaySize int64
}

// VM is a running (or stopped) rig machine.
type VM struct {
	Image   *Image
	Dir     string        // its private directory: disks, overlay, consoles, keys
	Port    int           // sshd forwarded on 127.0.0.1:Port
	HostKey ssh.PublicKey // the host key the current boot is pinned to
	Disks   []string      // the target disk images, in /dev/vdX order
	Overlay string        // the installer's writable overlay image (ext4, upper/ and work/)
	// PastOverlays are the overlays of live boots before a HardReset
	// (a live system's writable layer does not survive a power cut).
	PastOverlays []string
	// Identity is the rig's operator private key (in Dir, never in the VM).
	Identity string
	// OperatorKey is its authorized_keys line.
	OperatorKey string

	opts      Options
	t         testenv.TB
	boots     int
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	installed bool
}

// Boot starts the live installer and waits until it answers SSH with its
// pinned host key. The VM is stopped when t ends; if t failed, the serial
// console is logged.
func Boot(t testenv.TB, opts Options) *VM {
	t.Helper()
	img := Build(t)
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 2048
	}
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 4 * time.Minute
	}
	if opts.RootLabel == "" {
		opts.RootLabel = "nixos"
	}
	if opts.OverlaySize == 0 {
		opts.OverlaySize = 4 << 30
	}
	vm := &VM{Image: img, Dir: t.TempDir(), opts: opts, t: t, HostKey: img.HostKey}
	t.Cleanup(func() {
		vm.Stop()
		if t.Failed() {
			t.Logf("serial console of the rig VM:\n%s", tail(vm.Console(), 120))
		}
	})
	if err := vm.prepare(); err != nil {
		t.Fatalf("prepare rig VM: %v", err)
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		port, err := sshtest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		vm.Port = port
		err = vm.start()
		if err == nil {
			break
		}
		// Someone took the free port before qemu bound it: try another.
		if attempt < 3 && errors.Is(err, ErrExited) && strings.Contains(err.Error(), "host forwarding") {
			continue
		}
		t.Fatalf("boot rig VM: %v", err)
	}
	t.Logf("rig VM: boot to SSH in %s (port %d)", time.Since(start).Round(100*time.Millisecond), vm.Port)
	return vm
}

// prepare makes the operator key, the target disks and the overlay image
// seeded with root's authorized_keys.
func (vm *VM) prepare() error {
	vm.Identity = filepath.Join(vm.Dir, "operator_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rig-operator", "-f", vm.Identity).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	pub, err := os.ReadFile(vm.Identity + ".pub")
	if err != nil {
		return err
	}
	vm.OperatorKey = strings.TrimSpace(string(pub))
	for i, size := range vm.opts.Disks {
		p := filepath.Join(vm.Dir, fmt.Sprintf("disk%d.img", i))
		if err := sparse(p, size); err != nil {
			return err
		}
		vm.Disks = append(vm.Disks, p)
	}
	return vm.newOverlay()
}

// newOverlay makes a fresh overlay image (the live system's writable
// layer) seeded with root's authorized_keys.
func (vm *VM) newOverlay() error {
	seed := filepath.Join(vm.Dir, "seed")
	defer os.RemoveAll(seed)
	ssh := filepath.Join(seed, "upper", "root", ".ssh")
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(seed, "upper", "root"), 0o700); err != nil {
		return err
	}
	keys := append([]string{vm.OperatorKey}, vm.opts.AuthorizedKeys...)
	if err := os.WriteFile(filepath.Join(ssh, "authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	vm.Overlay = filepath.Join(vm.Dir, fmt.Sprintf("overlay-%d.img", len(vm.PastOverlays)))
	if err := sparse(vm.Overlay, vm.opts.OverlaySize); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "fleet-overlay", "-d", seed, vm.Overlay).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 overlay: %w: %s", err, out)
	}
	return nil
}

func sparse(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tcg is qemu's software emulation, which the rig uses unless KVM proves
// fast: /dev/kvm on the project's machines is nested (PVM), where a stock
// kernel boots slower than under emulation or stalls in the decompressor.
const tcg = "tcg,thread=multi"

var (
	accelOnce sync.Once
	accel     string
)

// Accel is qemu's -accel value for img: FLEET_RIG_ACCEL if set, else the
// result of [ProbeKVM] (measured once per process), else TCG.
func Accel(img *Image) string {
	accelOnce.Do(func() {
		if a := os.Getenv("FLEET_RIG_ACCEL"); a != "" {
			accel = a
			return
		}
		accel = tcg
		took, err := ProbeKVM(context.Background(), img, KVMProbeLimit)
		if err == nil {
			accel = "kvm"
			fmt.Fprintf(os.Stderr, "rig: KVM probe: kernel start to panic in %s: using KVM\n", took.Round(10*time.Millisecond))
		} else {
			fmt.Fprintf(os.Stderr, "rig: KVM probe: %v: using TCG\n", err)
		}
	})
	return accel
}

// KVMProbeLimit bounds the probe. Under working KVM the kernel reaches its
// panic in well under a second; under TCG here it takes ~3 s.
const KVMProbeLimit = 2 * time.Second

// ErrSlowKVM is returned by ProbeKVM when KVM is missing or not faster
// than the limit.
var ErrSlowKVM = errors.New("kvm unusable")

// ProbeKVM boots img's kernel under KVM with no root filesystem, so that
// it panics right after start (panic=-1 reboots at once and -no-reboot
// ends qemu), and reports how long that took; an error if /dev/kvm is
// missing, qemu fails, or it took longer than limit.
func ProbeKVM(ctx context.Context, img *Image, limit time.Duration) (time.Duration, error) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrSlowKVM, err)
	}
	f.Close()
	took, err := ProbeBoot(ctx, img, "kvm", limit)
	if err != nil {
		return took, fmt.Errorf("%w: %v", ErrSlowKVM, err)
	}
	return took, nil
}

// ProbeBoot times img's kernel from qemu start to its panic for lack of a
// root filesystem, under accel, failing past limit.
func ProbeBoot(ctx context.Context, img *Image, accel string, limit time.Duration) (time.Duration, error) {
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(pctx, "qemu-system-x86_64", "-machine", "q35", "-accel", accel, "-cpu", "max",
		"-m", "256", "-kernel", img.Kernel, "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
		"-display", "none", "-nodefaults", "-serial", "null", "-no-reboot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	switch {
	case pctx.Err() != nil:
		return took, fmt.Errorf("the kernel did not reach its panic within %s under %s", limit, accel)
	case err != nil:
		return took, fmt.Errorf("qemu -accel %s: %v: %s", accel, err, strings.TrimSpace(string(out)))
	}
	return took, nil
}

// qemuArgs is the qemu command line of the current boot.
func (vm *VM) qemuArgs() []string {
	args := []string{
		"-machine", "q35", "-accel", Accel(vm.Image), "-cpu", "max",
		"-smp", strconv.Itoa(vm.opts.CPUs), "-m", strconv.Itoa(vm.opts.MemoryMiB),
		"-kernel", vm.Image.Kernel, "-initrd", vm.Image.Initrd,
		"-display", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:" + vm.consolePath(vm.boots),
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", vm.Port),
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
	}
	drive := func(id, file, serial string, ro bool) {
		spec := fmt.Sprintf("file=%s,if=none,id=%s,format=raw,cache=unsafe", file, id)
		if ro {
			spec += ",readonly=on"
		}
		args = append(args, "-drive", spec, "-device", fmt.Sprintf("virtio-blk-pci,drive=%s,serial=%s", id, serial))
	}
	for i, d := range vm.Disks {
		drive(fmt.Sprintf("d%d", i), d, fmt.Sprintf("fleet-disk%d", i), false)
	}
	cmdline := "console=ttyS0 net.ifnames=0 panic=1 loglevel=4 systemd.show_status=auto mitigations=off"
	if vm.installed {
		cmdline += " root=LABEL=" + vm.opts.RootLabel
	} else {
		drive("installer", vm.Image.Installer, "fleet-installer", true)
		drive("overlay", vm.Overlay, "fleet-overlay", false)
		cmdline += " fleet.live"
	}
	return append(args, "-append", cmdline)
}

func (vm *VM) consolePath(boot int) string {
	return filepath.Join(vm.Dir, fmt.Sprintf("console-%d.log", boot))
}

// start runs qemu and waits for SSH.
func (vm *VM) start() error {
	cmd := exec.Command("qemu-system-x86_64", vm.qemuArgs()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// qemu dies with the test process, so a crashed test leaks nothing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start qemu: %w", err)
	}
	vm.cmd = cmd
	vm.exited = make(chan struct{})
	go func() {
		err := cmd.Wait()
		if out.Len() > 0 {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
		}
		vm.exitErr = err
		close(vm.exited)
	}()
	vm.boots++
	ctx, cancel := context.WithTimeout(context.Background(), vm.opts.BootTimeout)
	defer cancel()
	return vm.waitSSH(ctx)
}

// ErrExited is returned when qemu ended while the rig waited for it.
var ErrExited = errors.New("qemu exited")

// waitSSH polls until a login with the pinned host key runs `true`.
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
			return nil
		}
		last = strings.TrimSpace(string(out))
		if strings.Contains(last, "REMOTE HOST IDENTIFICATION HAS CHANGED") || strings.Contains(last, "Host key verification failed") {
			return fmt.Errorf("VM answered with a host key other than the pinned %s: %s", ssh.FingerprintSHA256(vm.HostKey), last)
		}
		time.Sleep(time.Second)
	}
}

// KnownHosts writes a known_hosts file pinning the current host key and
// returns its path.
func (vm *VM) KnownHosts() string {
	p := filepath.Join(vm.Dir, fmt.Sprintf("known_hosts-%d", vm.boots))
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", vm.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(vm.HostKey))))
	_ = os.WriteFile(p, []byte(line), 0o600)
	return p
}

// Fingerprint is the pinned host key's SHA256 fingerprint.
func (vm *VM) Fingerprint() string { return ssh.FingerprintSHA256(vm.HostKey) }

// Target is "root@127.0.0.1:PORT".
func (vm *VM) Target() string { return fmt.Sprintf("root@127.0.0.1:%d", vm.Port) }

// SSHArgs are OpenSSH client arguments that log in as root with the
// operator key and the pinned host key; append "--" and a command.
//
// extra come first, so they override the defaults (ssh keeps the first
// value of an option).
func (vm *VM) SSHArgs(extra ...string) []string {
	args := append(append([]string{}, extra...),
		"-F", "none", "-p", strconv.Itoa(vm.Port),
		"-i", vm.Identity,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+vm.KnownHosts(),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10",
		"-o", "ServerAliveInterval=5",
		"-o", "LogLevel=ERROR",
	)
	return append(args, "root@127.0.0.1")
}

// Command is an ssh command running args (joined by spaces, as ssh does)
// on the VM; set Env (e.g. SSH_AUTH_SOCK with "-A" in extra) or Stdin on
// it before running.
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

// Run runs a shell command on the VM and returns its stdout; a failure
// carries stderr.
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

// Wait waits for qemu to exit (a guest poweroff or reboot).
func (vm *VM) Wait(ctx context.Context) error {
	if vm.exited == nil {
		return nil
	}
	select {
	case <-vm.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the VM to go down: %w", ctx.Err())
	}
}

// Reboot reboots the guest and boots the machine again from its target
// disks only (the installer media removed), on the same port, as firmware
// would; it waits for SSH with hostKey, the key the installed system's
// sshd must present. If the guest already went down (the code under test
// rebooted it), the reboot command is skipped.
func (vm *VM) Reboot(ctx context.Context, hostKey ssh.PublicKey) error {
	select {
	case <-vm.exited:
	default:
		// The connection may drop mid-command: its error says nothing.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = vm.Command(rctx, "systemctl reboot || reboot -f").Run()
		cancel()
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := vm.Wait(wctx); err != nil {
		return err
	}
	vm.installed = true
	vm.HostKey = hostKey
	start := time.Now()
	if err := vm.start(); err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	vm.t.Logf("rig VM: installed machine boot to SSH in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// HardReset cuts the machine's power (qemu is killed, the guest gets no
// chance to shut down) and boots it again as it was: the live installer,
// or the installed machine after Reboot. Disks keep whatever reached
// them; RAM is lost, and with it a live installer's writable layer (a new
// overlay image replaces it; the old one is kept in PastOverlays).
func (vm *VM) HardReset(ctx context.Context) error {
	vm.Stop()
	if !vm.installed {
		// A live installer's writable layer is RAM: it comes back blank.
		// The old one stays for the host-side scan.
		vm.PastOverlays = append(vm.PastOverlays, vm.Overlay)
		if err := vm.newOverlay(); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := vm.start(); err != nil {
		return fmt.Errorf("boot after a hard reset: %w", err)
	}
	vm.t.Logf("rig VM: hard reset, boot to SSH in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// Shutdown powers the guest off and waits for qemu to end, killing it if
// it has not ended within a minute.
func (vm *VM) Shutdown(ctx context.Context) {
	if vm.cmd == nil || vm.exited == nil {
		return
	}
	select {
	case <-vm.exited:
		return
	default:
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_ = vm.Command(rctx, "systemctl poweroff || poweroff -f").Run()
	cancel()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_ = vm.Wait(wctx)
	vm.Stop()
}

// Stop kills qemu (if running) and waits for it.
func (vm *VM) Stop() {
	if vm.cmd == nil || vm.exited == nil {
		return
	}
	select {
	case <-vm.exited:
		return
	default:
	}
	_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	<-vm.exited
}

// Console is the serial console of every boot so far.
func (vm *VM) Console() string {
	var b strings.Builder
	for i := 0; i < vm.boots; i++ {
		data, _ := os.ReadFile(vm.consolePath(i))
		fmt.Fprintf(&b, "--- boot %d ---\n%s", i+1, data)
	}
	return b.String()
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
