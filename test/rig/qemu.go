package rig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The aarch64 guest's UEFI firmware (Debian's qemu-efi-aarch64): the code
// is attached read-only, the variable store copied per VM.
var (
	AAVMFCode = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

func (vm *VM) qemuBinary() string {
	if vm.Image.Arch == ArchAarch64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// qemuArgs is the qemu command line of the current boot.
//
// x86_64: q35, the kernel booted directly (no firmware: the fastest under
// TCG). aarch64: the virt machine with Debian's UEFI firmware (AAVMF) in
// pflash, which loads the kernel qemu hands it through fw_cfg as an EFI
// application, so the guest runs under UEFI (/sys/firmware/efi) as an
// ARM board with EDK2 does; -cpu max with pauth-impdef, whose pointer
// authentication is far cheaper to emulate than the architected one
// (firmware and kernel to a failing init: 42 s, against 62 s with plain
// max, measured side by side on a loaded machine). Boot to SSH: 36-74 s.
func (vm *VM) qemuArgs() []string {
	var args []string
	console := "ttyS0"
	switch vm.Image.Arch {
	case ArchAarch64:
		console = "ttyAMA0"
		args = []string{
			"-machine", "virt", "-accel", tcg, "-cpu", "max,pauth-impdef=on",
			"-drive", "if=pflash,format=raw,readonly=on,file=" + AAVMFCode,
			"-drive", "if=pflash,format=raw,file=" + vm.vars,
		}
	default:
		args = []string{"-machine", "q35", "-accel", Accel(vm.Image), "-cpu", "max"}
	}
	args = append(args,
		"-smp", strconv.Itoa(vm.opts.CPUs), "-m", strconv.Itoa(vm.opts.MemoryMiB),
		"-kernel", vm.Image.Kernel, "-initrd", vm.Image.Initrd,
		"-display", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:"+vm.consolePath(vm.bootCount()),
		"-qmp", "unix:"+vm.qmpPath()+",server=on,wait=off",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22,hostfwd=tcp:127.0.0.1:%d-:2222", vm.Port, vm.ControlPort),
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
	)
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
	cmdline := "console=" + console + " net.ifnames=0 panic=1 loglevel=4 systemd.show_status=auto mitigations=off"
	if vm.installed {
		cmdline += " root=LABEL=" + vm.opts.RootLabel
	} else {
		drive("installer", vm.Image.Installer, "fleet-installer", true)
		drive("overlay", vm.Overlay, "fleet-overlay", false)
		cmdline += " fleet.live"
	}
	return append(args, "-append", cmdline)
}

// tcg is qemu's software emulation, which the rig uses unless KVM proves
// fast: /dev/kvm on the project's machines is nested (PVM), where a stock
// kernel boots slower than under emulation or stalls in the decompressor.
// aarch64 guests on an x86_64 host always run under it.
const tcg = "tcg,thread=multi"

var (
	accelOnce sync.Once
	accel     string
)

// Accel is qemu's -accel value for img: TCG for a foreign architecture,
// else FLEET_RIG_ACCEL if set, else the result of [ProbeKVM] (measured
// once per process), else TCG.
func Accel(img *Image) string {
	if img.Arch == ArchAarch64 {
		return tcg
	}
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
			fmt.Fprintf(os.Stderr, "rig: KVM probe: %s: using TCG\n", strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
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

// ProbeBoot times img's kernel (x86_64) from qemu start to its panic for
// lack of a root filesystem, under accel, failing past limit.
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
