// Package rig runs a live-installer virtual machine under qemu for
// end-to-end tests: the ground fleet installs onto.
//
// The model: [Build] makes (once, cached under /var/cache/fleet/rig or $FLEET_RIG_CACHE,
// keyed by a hash of its inputs) a Debian kernel, a busybox initramfs and an
// installer image — a debootstrap'd Debian with sshd, disk tools and age.
// [Boot] starts a VM from it with live-media semantics: the installer image
// is attached read-only and every write lands in an overlay whose upper dir
// is on a separate writable image ([VM.Overlay]) that the host inspects
// afterwards ([VM.Scan]). The VM gets N blank target disks, and its sshd is
// forwarded from a free 127.0.0.1 port with the host key made at build time,
// so clients pin it. A guest reboot ends qemu (-no-reboot); [VM.Reboot] then
// starts the same machine from its target disks only, as firmware would:
// the initramfs mounts the filesystem labelled [Options.RootLabel].
//
// [StartGitServer] runs a private git server (OpenSSH with a git-shell
// forced command) on the host's loopback, which the VM reaches at
// 10.0.2.2 (qemu user networking).
//
// Assumptions: root (debootstrap, loop mounts, sshd's mount namespace),
// qemu-system-x86, debootstrap, kmod, cpio, busybox-static, e2fsprogs and
// OpenSSH installed; the Debian mirror reachable on a cold cache. Tests skip
// with the reason otherwise, or when FLEET_RIG=off.
package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fleetnix/fleet/test/testenv"

	"golang.org/x/crypto/ssh"
)

// Image is a built rig: kernel, initramfs and installer image.
type Image struct {
	Dir       string        // the cache directory holding it all
	Kernel    string        // vmlinux (uncompressed, faster under TCG) or vmlinuz
	Initrd    string        // busybox initramfs
	Installer string        // ext4 installer root image, attached read-only
	HostKey   ssh.PublicKey // the installer's sshd host key (made at build time)
	Release   string        // kernel release, e.g. 6.1.0-56-amd64
}

// ErrUnavailable is returned when the machine cannot run the rig at all.
var ErrUnavailable = errors.New("rig unavailable")

// Available reports why the rig cannot run here, or nil.
func Available() error {
	if v := os.Getenv("FLEET_RIG"); v == "off" || v == "0" {
		return fmt.Errorf("%w: FLEET_RIG=%s", ErrUnavailable, v)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (debootstrap, loop mounts); CI runs as root", ErrUnavailable)
	}
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("%w: needs an amd64 host", ErrUnavailable)
	}
	for _, bin := range []string{"qemu-system-x86_64", "debootstrap", "mkfs.ext4", "busybox", "cpio", "depmod", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %s not found: install qemu-system-x86 qemu-utils debootstrap kmod cpio busybox-static e2fsprogs openssh-client", ErrUnavailable, bin)
		}
	}
	return nil
}

// Require skips t, with the reason, when the rig cannot run here: always
// when FLEET_RIG=off, else as testenv decides (a failure under
// FLEET_STRICT=1).
func Require(t testenv.TB) {
	t.Helper()
	if v := os.Getenv("FLEET_RIG"); v == "off" || v == "0" {
		t.Skipf("FLEET_RIG=%s: the VM tests are off", v)
	}
	if err := Available(); err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// buildScript is test/rig/build.sh, found next to this source file.
func buildScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "build.sh")
}

var (
	buildOnce sync.Once
	buildImg  *Image
	buildErr  error
)

// Build builds the rig (or finds it in the cache) once per process.
func Build(t testenv.TB) *Image {
	t.Helper()
	Require(t)
	buildOnce.Do(func() {
		start := time.Now()
		buildImg, buildErr = BuildContext(context.Background(), os.Stderr)
		if buildErr == nil {
			t.Logf("rig image ready in %s: %s", time.Since(start).Round(time.Millisecond), buildImg.Dir)
		}
	})
	if buildErr != nil {
		t.Fatalf("build rig: %v", buildErr)
	}
	return buildImg
}

// BuildContext runs build.sh, sending its progress to log, and loads the
// result.
func BuildContext(ctx context.Context, log *os.File) (*Image, error) {
	cmd := exec.CommandContext(ctx, "sh", buildScript())
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w", buildScript(), err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return Load(lines[len(lines)-1])
}

// Load reads a built rig from its directory.
func Load(dir string) (*Image, error) {
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		return nil, fmt.Errorf("load rig %s: not a finished build: %w", dir, err)
	}
	img := &Image{
		Dir:       dir,
		Kernel:    filepath.Join(dir, "vmlinux"),
		Initrd:    filepath.Join(dir, "initramfs.img"),
		Installer: filepath.Join(dir, "installer.img"),
	}
	if _, err := os.Stat(img.Kernel); err != nil {
		img.Kernel = filepath.Join(dir, "vmlinuz")
	}
	pub, err := os.ReadFile(filepath.Join(dir, "installer_host_key.pub"))
	if err != nil {
		return nil, fmt.Errorf("load rig: %w", err)
	}
	if img.HostKey, _, _, _, err = ssh.ParseAuthorizedKey(pub); err != nil {
		return nil, fmt.Errorf("load rig: host key: %w", err)
	}
	rel, _ := os.ReadFile(filepath.Join(dir, "kernel-release"))
	img.Release = strings.TrimSpace(string(rel))
	return img, nil
}
