// Package rig runs live-installer virtual machines under qemu for
// end-to-end tests and the demo: the ground fleet installs onto.
//
// The model: [Build] makes (once per machine, cached under
// /var/cache/fleet/rig or $FLEET_RIG_CACHE by a hash of its inputs, see
// build.sh) a Debian kernel, a busybox initramfs and an installer image
// for an architecture ([ArchX86_64], [ArchAarch64]) and a profile: the
// installer it reproduces ([ProfileDebian], the rig's own and the
// default; [ProfileISO], the official NixOS minimal ISO; [ProfileKexec],
// nixos-images' kexec installer), optionally with ZFS.
//
// [Boot] starts a VM from it (or restores a snapshot of one booted
// before, see snapshot.go) with live-media semantics: the installer
// image is attached read-only and every write lands in an overlay whose
// upper dir is on a separate writable image ([VM.Overlay]) that the host
// inspects afterwards ([VM.Scan]). The VM gets target disks (blank, or
// kept across boots: [VM.BootInstaller], [VM.ReplaceDisk]); its sshd is
// forwarded from a free 127.0.0.1 port with the host key made at build
// time, so clients pin it. The harness itself reaches the VM through a
// control channel (a second sshd, port 2222 in the guest, root with the
// operator key), so each profile's real sshd stays as that installer has
// it, whoever may log in there. A guest reboot ends qemu (-no-reboot);
// [VM.Reboot] then starts the same machine from its target disks only, as
// firmware would: the initramfs mounts the filesystem labelled
// [Options.RootLabel].
//
// [StartGitServer] runs a private git server (OpenSSH with a git-shell
// forced command) on the host's loopback, which the VM reaches at
// 10.0.2.2 (qemu user networking).
//
// Everything takes a [testenv.TB], so the demo program drives the rig as
// a library, as the tests do.
//
// Assumptions: root (debootstrap, loop mounts, sshd's mount namespace),
// qemu-system-x86 (and for aarch64 qemu-system-arm, qemu-efi-aarch64 and
// qemu-user-static), debootstrap, kmod, cpio, busybox-static, e2fsprogs,
// openssl and OpenSSH installed; the Debian mirror reachable on a cold
// cache. Tests skip with the reason otherwise (fail under
// FLEET_STRICT=1), or when FLEET_RIG=off.
package rig

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetnix/fleet/test/testenv"

	"golang.org/x/crypto/ssh"
)

// Architectures of the rig's guests.
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// Profiles: which installer an image reproduces (test/rig/profiles).
const (
	// ProfileDebian is the rig's own installer, the default: Debian with
	// every tool, root logs in with the operator key.
	ProfileDebian = "debian"
	// ProfileISO is the official NixOS minimal ISO: log in as nixos with
	// a password set at the console ([Options.Passwords]), passwordless
	// sudo; root has no key; no openssl, no age.
	ProfileISO = "iso"
	// ProfileKexec is nixos-images' noninteractive kexec installer: root
	// logs in with keys; no git, no cryptsetup, no sudo.
	ProfileKexec = "kexec"
)

// Profiles lists the known profiles.
var Profiles = []string{ProfileDebian, ProfileISO, ProfileKexec}

// Image is a built rig: kernel, initramfs and installer image.
type Image struct {
	Dir       string // the cache directory holding it all
	Kernel    string // vmlinux (x86_64, uncompressed: faster under TCG), vmlinuz, or Image (aarch64)
	Initrd    string // busybox initramfs
	Installer string // ext4 installer root image, attached read-only
	Arch      string // ArchX86_64 or ArchAarch64
	Profile   string // ProfileDebian, ProfileISO or ProfileKexec
	ZFS       bool   // zfs.ko for Release and zfsutils-linux are in the image
	Release   string // kernel release, e.g. 6.1.0-57-amd64
	// HostKey is the installer sshd's ed25519 host key, the one the rig
	// pins; HostKeys are all of its host keys in its sshd_config's order
	// (the iso profile has NixOS's RSA key first).
	HostKey  ssh.PublicKey
	HostKeys []ssh.PublicKey
	// ControlHostKey is the host key of the rig's control channel.
	ControlHostKey ssh.PublicKey
	// Login is the user a person logs in as on this installer: root, or
	// nixos for the iso profile.
	Login string
	// RootKeys reports whether root logs in with keys here: the rig then
	// seeds root's authorized_keys with the operator key.
	RootKeys bool
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
	for _, bin := range []string{"qemu-system-x86_64", "debootstrap", "mkfs.ext4", "busybox", "cpio", "depmod", "ssh", "ssh-keygen", "openssl", "flock"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %s not found: install the packages in scripts/packages", ErrUnavailable, bin)
		}
	}
	return nil
}

// AvailableArch reports why the rig cannot run arch's guests here, or nil.
func AvailableArch(arch string) error {
	if err := Available(); err != nil {
		return err
	}
	switch arch {
	case "", ArchX86_64:
		return nil
	case ArchAarch64:
		for _, bin := range []string{"qemu-system-aarch64", "qemu-aarch64-static"} {
			if _, err := exec.LookPath(bin); err != nil {
				return fmt.Errorf("%w: %s not found: install qemu-system-arm and qemu-user-static", ErrUnavailable, bin)
			}
		}
		for _, f := range []string{AAVMFCode, AAVMFVars} {
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("%w: %s: install qemu-efi-aarch64", ErrUnavailable, f)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown architecture %q (%s, %s)", arch, ArchX86_64, ArchAarch64)
}

// Require skips t, with the reason, when the rig cannot run here: always
// when FLEET_RIG=off, else as testenv decides (a failure under
// FLEET_STRICT=1).
func Require(t testenv.TB) {
	t.Helper()
	RequireArch(t, ArchX86_64)
}

// RequireArch is [Require] for arch's guests.
func RequireArch(t testenv.TB, arch string) {
	t.Helper()
	if v := os.Getenv("FLEET_RIG"); v == "off" || v == "0" {
		t.Skipf("FLEET_RIG=%s: the VM tests are off", v)
	}
	if err := AvailableArch(arch); err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// buildScript is test/rig/build.sh, found next to this source file.
func buildScript() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "build.sh")
}

// Spec names an image: [Options.Arch], [Options.Profile], [Options.ZFS]
// with their defaults filled in.
type Spec struct {
	Arch, Profile string
	ZFS           bool
}

func (s Spec) String() string {
	v := s.Arch + "/" + s.Profile
	if s.ZFS {
		v += "+zfs"
	}
	return v
}

func (s Spec) args() []string {
	a := []string{"--arch", s.Arch, "--profile", s.Profile}
	if s.ZFS {
		a = append(a, "--zfs")
	}
	return a
}

// spec is opts' image with the defaults filled in.
func (o Options) spec() Spec {
	s := Spec{Arch: o.Arch, Profile: o.Profile, ZFS: o.ZFS}
	if s.Arch == "" {
		s.Arch = ArchX86_64
	}
	if s.Profile == "" {
		s.Profile = ProfileDebian
	}
	return s
}

type built struct {
	once sync.Once
	img  *Image
	err  error
}

var (
	buildMu sync.Mutex
	builds  = map[Spec]*built{}
)

// Build builds the image opts name (or finds it in the cache), once per
// process.
func Build(t testenv.TB, opts Options) *Image {
	t.Helper()
	spec := opts.spec()
	RequireArch(t, spec.Arch)
	if !slices.Contains(Profiles, spec.Profile) {
		t.Fatalf("rig: unknown profile %q (known: %s)", spec.Profile, strings.Join(Profiles, ", "))
	}
	buildMu.Lock()
	b := builds[spec]
	if b == nil {
		b = &built{}
		builds[spec] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		start := time.Now()
		b.img, b.err = BuildContext(context.Background(), os.Stderr, spec)
		if b.err == nil {
			t.Logf("rig image %s ready in %s: %s", spec, time.Since(start).Round(time.Millisecond), b.img.Dir)
		}
	})
	if b.err != nil {
		t.Fatalf("build rig %s: %v", spec, b.err)
	}
	return b.img
}

// BuildContext runs build.sh for spec, sending its progress to log, and
// loads the result.
func BuildContext(ctx context.Context, log io.Writer, spec Spec) (*Image, error) {
	cmd := exec.CommandContext(ctx, "sh", append([]string{buildScript()}, spec.args()...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w", buildScript(), err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return Load(lines[len(lines)-1])
}

var (
	lockMu sync.Mutex
	locked = map[string]*os.File{}
)

// Load reads a built rig from its directory. It marks the build used now
// and holds a shared lock on it for the life of the process, so that no
// build.sh prunes it while a VM may run from it.
func Load(dir string) (*Image, error) {
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		return nil, fmt.Errorf("load rig %s: not a finished build: %w", dir, err)
	}
	conf, err := readConf(filepath.Join(dir, "image.conf"))
	if err != nil {
		return nil, fmt.Errorf("load rig %s: %w", dir, err)
	}
	img := &Image{
		Dir:       dir,
		Initrd:    filepath.Join(dir, "initramfs.img"),
		Installer: filepath.Join(dir, "installer.img"),
		Arch:      conf["arch"],
		Profile:   conf["profile"],
		ZFS:       conf["zfs"] == "1",
		Release:   conf["kernel_release"],
		Login:     conf["login"],
		RootKeys:  conf["root_keys"] == "yes",
	}
	for _, k := range []string{"vmlinux", "Image", "vmlinuz"} {
		if _, err := os.Stat(filepath.Join(dir, k)); err == nil {
			img.Kernel = filepath.Join(dir, k)
			break
		}
	}
	if img.Kernel == "" {
		return nil, fmt.Errorf("load rig %s: no kernel", dir)
	}
	for _, typ := range strings.Fields(conf["host_keys"]) {
		k, err := readPublicKey(filepath.Join(dir, "installer_host_"+typ+"_key.pub"))
		if err != nil {
			return nil, fmt.Errorf("load rig %s: %w", dir, err)
		}
		img.HostKeys = append(img.HostKeys, k)
		if typ == "ed25519" {
			img.HostKey = k
		}
	}
	if img.HostKey == nil {
		return nil, fmt.Errorf("load rig %s: the installer has no ed25519 host key to pin", dir)
	}
	if img.ControlHostKey, err = readPublicKey(filepath.Join(dir, "control_host_key.pub")); err != nil {
		return nil, fmt.Errorf("load rig %s: %w", dir, err)
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, "used"), now, now)
	if err := holdLock(dir); err != nil {
		return nil, fmt.Errorf("load rig %s: %w", dir, err)
	}
	return img, nil
}

// holdLock takes a shared flock on dir/lock, kept until the process ends.
func holdLock(dir string) error {
	lockMu.Lock()
	defer lockMu.Unlock()
	if locked[dir] != nil {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("lock: %w", err)
	}
	locked[dir] = f
	return nil
}

func readPublicKey(p string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return k, nil
}

// readConf reads KEY=VALUE lines.
func readConf(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	conf := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			conf[k] = v
		}
	}
	return conf, sc.Err()
}
