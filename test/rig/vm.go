package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	// Arch is the guest's architecture: ArchX86_64 (default) or
	// ArchAarch64 (qemu -M virt with UEFI firmware, under TCG).
	Arch string
	// Profile is the installer the VM reproduces: ProfileDebian
	// (default), ProfileISO or ProfileKexec.
	Profile string
	// ZFS selects the image variant with ZFS (x86_64 only).
	ZFS bool
	// Disks are the sizes in bytes of the blank target disks (sparse
	// files), attached first: /dev/vda, /dev/vdb, ... with serials
	// fleet-disk0, fleet-disk1, ... (/dev/disk/by-id/virtio-fleet-diskN).
	// They keep their data across [VM.Reboot], [VM.HardReset] and
	// [VM.BootInstaller]; [VM.ReplaceDisk] blanks one.
	Disks []int64
	// AuthorizedKeys are extra authorized_keys lines for root, besides
	// the operator key (which root gets only where the profile's root
	// logs in with keys, see [Image.RootKeys]).
	AuthorizedKeys []string
	// Passwords sets users' passwords (user -> password) as a person does
	// at the console with passwd, once the live system is up: the rig
	// hashes them on the host (SHA-512 crypt) and sets the hash over its
	// control channel (usermod -p), so the plaintext never enters the VM.
	// The iso profile's nixos user needs one before anyone can log in
	// over SSH.
	Passwords map[string]string
	// MemoryMiB defaults to 2048, CPUs to 2.
	MemoryMiB, CPUs int
	// BootTimeout bounds qemu start to a working SSH login (default 4 min
	// for x86_64, 8 for aarch64: TCG on a busy 2-core machine).
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
	Image *Image
	Dir   string // its private directory: disks, overlay, consoles, keys
	// Port is the installer's sshd (guest port 22) on 127.0.0.1: what
	// fleet dials.
	Port int
	// ControlPort is the rig's control channel (guest port 2222) on
	// 127.0.0.1: what [VM.Command], [VM.Run] and [VM.SSHArgs] use.
	ControlPort int
	// HostKey is the host key Port's sshd must present this boot. Reboot
	// and BootInstaller change it: while one of them may run in another
	// goroutine, read it with [VM.PinnedKey] or [VM.Fingerprint].
	HostKey ssh.PublicKey
	Disks   []string // the target disk images, in /dev/vdX order
	Overlay string   // the installer's writable overlay image (ext4, upper/ and work/)
	// PastOverlays are the overlays of live boots before this one (a live
	// system's writable layer does not survive a power cut or a reboot).
	PastOverlays []string
	// Identity is the rig's operator private key (in Dir, never in the VM).
	Identity string
	// OperatorKey is its authorized_keys line.
	OperatorKey string
	// Restored reports whether the first boot restored a snapshot of the
	// booted installer instead of booting (see snapshot.go).
	Restored bool

	opts      Options
	t         testenv.TB
	boots     int
	cmd       *exec.Cmd
	exited    chan struct{}
	exitErr   error
	installed bool
	vars      string     // aarch64: this machine's UEFI variable store
	snap      *snapshot  // the snapshot of this machine's shape, nil when off
	mu        sync.Mutex // guards HostKey and boots across goroutines
}

// PinnedKey is HostKey, safe to read while another goroutine reboots.
func (vm *VM) PinnedKey() ssh.PublicKey {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.HostKey
}

func (vm *VM) setHostKey(k ssh.PublicKey) {
	vm.mu.Lock()
	vm.HostKey = k
	vm.mu.Unlock()
}

// bootCount is how many times qemu started.
func (vm *VM) bootCount() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.boots
}

// Boot starts the live installer and waits until it answers SSH with its
// pinned host key. The VM is stopped when t ends; if t failed, the serial
// console is logged.
func Boot(t testenv.TB, opts Options) *VM {
	t.Helper()
	img := Build(t, opts)
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 2048
	}
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 4 * time.Minute
		if img.Arch == ArchAarch64 {
			opts.BootTimeout = 8 * time.Minute
		}
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
	vm.snap = vm.snapshotFor()
	if err := vm.prepare(); err != nil {
		t.Fatalf("prepare rig VM: %v", err)
	}
	start := time.Now()
	restored, err := vm.bootFresh()
	if err != nil {
		t.Fatalf("boot rig VM: %v", err)
	}
	vm.Restored = restored
	how := "boot"
	if restored {
		how = "restored from a snapshot"
	}
	t.Logf("rig VM (%s): %s, SSH in %s (port %d)", img.specString(), how, time.Since(start).Round(100*time.Millisecond), vm.Port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := vm.personalize(ctx, restored); err != nil {
		t.Fatalf("rig VM: %v", err)
	}
	return vm
}

// bootFresh boots the live installer the first time: from the snapshot
// of its shape if there is one (else it boots and saves one).
func (vm *VM) bootFresh() (restored bool, err error) {
	if s := vm.snap; s != nil && s.ready() {
		err := vm.withPorts(func() error { return s.restore(vm) })
		if err == nil {
			return true, nil
		}
		vm.Stop()
		vm.t.Logf("rig VM: snapshot %s not restored (%v): booting", s.dir, err)
		if err := vm.newOverlay(false); err != nil {
			return false, err
		}
	}
	if err := vm.withPorts(vm.start); err != nil {
		return false, err
	}
	if s := vm.snap; s != nil && !s.ready() {
		start := time.Now()
		if err := s.save(vm); err != nil {
			vm.t.Logf("rig VM: no snapshot saved: %v", err)
		} else if s.ready() {
			vm.t.Logf("rig VM: snapshot saved in %s: %s", time.Since(start).Round(100*time.Millisecond), s.dir)
		}
	}
	return false, nil
}

func (img *Image) specString() string {
	return Spec{Arch: img.Arch, Profile: img.Profile, ZFS: img.ZFS}.String()
}

// withPorts picks free ports and runs boot; when someone took a port
// before qemu bound it, it tries others.
func (vm *VM) withPorts(boot func() error) error {
	for attempt := 1; ; attempt++ {
		var err error
		if vm.Port, err = sshtest.FreePort(); err != nil {
			return err
		}
		if vm.ControlPort, err = sshtest.FreePort(); err != nil {
			return err
		}
		err = boot()
		if err == nil || attempt == 3 || !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "host forwarding") {
			return err
		}
	}
}

// prepare makes the operator key (the snapshot's, when snapshots are
// on), the target disks, the firmware's variable store (aarch64) and the
// overlay image.
func (vm *VM) prepare() error {
	vm.Identity = filepath.Join(vm.Dir, "operator_ed25519")
	if vm.snap != nil {
		if err := vm.snap.operatorKey(vm); err != nil {
			return err
		}
	} else if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rig-operator", "-f", vm.Identity).CombinedOutput(); err != nil {
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
	if vm.Image.Arch == ArchAarch64 {
		vm.vars = filepath.Join(vm.Dir, "efivars.fd")
		b, err := os.ReadFile(AAVMFVars)
		if err != nil {
			return err
		}
		if err := os.WriteFile(vm.vars, b, 0o600); err != nil {
			return err
		}
	}
	return vm.newOverlay(false)
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

// start runs qemu and waits for SSH.
func (vm *VM) start() error { return vm.startWith(nil) }

// startWith runs qemu with extra arguments, then loaded (if not nil),
// and waits for SSH.
func (vm *VM) startWith(loaded func() error, extra ...string) error {
	cmd := exec.Command(vm.qemuBinary(), append(vm.qemuArgs(), extra...)...)
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
	vm.mu.Lock()
	vm.boots++
	vm.mu.Unlock()
	if loaded != nil {
		if err := loaded(); err != nil {
			vm.Stop()
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), vm.opts.BootTimeout)
	defer cancel()
	return vm.waitSSH(ctx)
}

// ErrExited is returned when qemu ended while the rig waited for it.
var ErrExited = errors.New("qemu exited")

// Running reports whether qemu runs.
func (vm *VM) Running() bool {
	if vm.exited == nil {
		return false
	}
	select {
	case <-vm.exited:
		return false
	default:
		return true
	}
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
// disks only (the installer media removed), on the same ports, as
// firmware would; it waits for SSH with hostKey, the key the installed
// system's sshd must present. If the guest already went down (the code
// under test rebooted it), the reboot command is skipped.
func (vm *VM) Reboot(ctx context.Context, hostKey ssh.PublicKey) error {
	if vm.Running() {
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
	vm.setHostKey(hostKey)
	start := time.Now()
	if err := vm.start(); err != nil {
		return fmt.Errorf("boot the installed machine: %w", err)
	}
	vm.t.Logf("rig VM: installed machine boot to SSH in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// BootInstaller powers the machine off (if it runs) and boots the live
// installer again with the same disks, as a person who boots the
// installer stick once more: for disks that already hold data (prepared
// in an earlier boot) and for reinstalls after [VM.Reboot]. The live
// system starts with a fresh writable layer (the last one is kept in
// PastOverlays) and the installer's pinned host key.
func (vm *VM) BootInstaller(ctx context.Context) error {
	vm.Shutdown(ctx)
	vm.PastOverlays = append(vm.PastOverlays, vm.Overlay)
	vm.installed = false
	vm.setHostKey(vm.Image.HostKey)
	if err := vm.newOverlay(true); err != nil {
		return err
	}
	start := time.Now()
	if err := vm.start(); err != nil {
		return fmt.Errorf("boot the installer again: %w", err)
	}
	vm.t.Logf("rig VM: installer boot to SSH in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// ErrRunning is returned for what needs the machine powered off.
var ErrRunning = errors.New("the VM is running")

// ReplaceDisk puts a blank disk of the same size in place of target disk
// i (as /dev/vda for 0, ...): the disk that died in a disaster recovery.
// The machine must be powered off ([VM.Shutdown]).
func (vm *VM) ReplaceDisk(i int) error {
	if vm.Running() {
		return fmt.Errorf("replace disk %d: %w: power it off first", i, ErrRunning)
	}
	if i < 0 || i >= len(vm.Disks) {
		return fmt.Errorf("replace disk %d: the VM has %d disks", i, len(vm.Disks))
	}
	if err := os.Remove(vm.Disks[i]); err != nil {
		return fmt.Errorf("replace disk %d: %w", i, err)
	}
	return sparse(vm.Disks[i], vm.opts.Disks[i])
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
		if err := vm.newOverlay(true); err != nil {
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
	if !vm.Running() {
		return
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
	if !vm.Running() {
		return
	}
	_ = syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	<-vm.exited
}

// Console is the serial console of every boot so far.
func (vm *VM) Console() string {
	var b strings.Builder
	for i := 0; i < vm.bootCount(); i++ {
		data, _ := os.ReadFile(vm.consolePath(i))
		fmt.Fprintf(&b, "--- boot %d ---\n%s", i+1, data)
	}
	return b.String()
}

func (vm *VM) consolePath(boot int) string {
	return filepath.Join(vm.Dir, fmt.Sprintf("console-%d.log", boot))
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
