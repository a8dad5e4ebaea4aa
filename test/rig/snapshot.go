package rig

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Snapshots of a booted live installer, so that most boots skip the boot.
//
// Measured here (2 cores, TCG, shared with other builds): an x86_64 live
// installer boots to SSH in 12 s on a quiet machine, 20-80 s on a loaded
// one, an aarch64 one in 36-74 s; restoring a snapshot (qemu migration
// state in a file, ~170 MB) answers SSH in 3-5 s on both. Saving one
// costs 1.3-3.5 s, once per image and shape.
//
// A snapshot belongs to an image and a machine shape (architecture, the
// disks' number and sizes, memory, CPUs, overlay size, qemu's version and
// accelerator):
// the first fresh boot of that shape saves one (the VM is paused right
// after it answers SSH, its state migrated to a file, its overlay image
// copied, then it runs on), later ones restore it. Only fresh boots use
// them: a snapshot's disks are blank, and a boot over disks that hold data
// must let udev see them. What is each VM's own is applied after the boot
// either way ([VM.personalize]): the clock (a restored guest's stopped at
// the snapshot), fresh entropy, root's extra authorized keys, passwords.
// VMs restored from one snapshot share its operator key.
//
// FLEET_RIG_SNAPSHOT=off boots every VM from scratch. Snapshots live in
// the image's directory (pruned with it).
type snapshot struct {
	dir string
}

// snapshotsOff reports whether FLEET_RIG_SNAPSHOT turns snapshots off.
func snapshotsOff() bool {
	v := os.Getenv("FLEET_RIG_SNAPSHOT")
	return v == "off" || v == "0"
}

var (
	qemuVersionOnce sync.Once
	qemuVersions    = map[string]string{}
)

func qemuVersion(bin string) string {
	qemuVersionOnce.Do(func() {
		for _, b := range []string{"qemu-system-x86_64", "qemu-system-aarch64"} {
			out, _ := exec.Command(b, "--version").Output()
			qemuVersions[b] = strings.SplitN(string(out), "\n", 2)[0]
		}
	})
	return qemuVersions[bin]
}

// snapshotFor is the snapshot of vm's shape (made or not), nil when
// snapshots are off.
func (vm *VM) snapshotFor() *snapshot {
	if snapshotsOff() {
		return nil
	}
	shape := fmt.Sprintf("v1|%s|%v|%d|%d|%d|%s|%s", vm.Image.Arch, vm.opts.Disks, vm.opts.MemoryMiB, vm.opts.CPUs,
		vm.opts.OverlaySize, qemuVersion(vm.qemuBinary()), Accel(vm.Image))
	sum := sha256.Sum256([]byte(shape))
	return &snapshot{dir: filepath.Join(vm.Image.Dir, "snapshots", hex.EncodeToString(sum[:8]))}
}

func (s *snapshot) ready() bool {
	_, err := os.Stat(filepath.Join(s.dir, "done"))
	return err == nil
}

// operatorKey copies the snapshot's operator key into vm.Dir, making it
// first if need be: every VM of this shape logs in with it.
func (s *snapshot) operatorKey(vm *VM) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(s.dir, "key.lock"), syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	key := filepath.Join(s.dir, "operator_ed25519")
	if _, err := os.Stat(key); err != nil {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rig-operator", "-f", key).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %w: %s", err, out)
		}
	}
	for _, suffix := range []string{"", ".pub"} {
		b, err := os.ReadFile(key + suffix)
		if err != nil {
			return err
		}
		if err := os.WriteFile(vm.Identity+suffix, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// lockFile takes a flock on path and returns its release.
func lockFile(path string, how int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// save pauses the running VM, migrates its state into the snapshot and
// copies its overlay image, then lets it run on. Whoever holds the
// snapshot's lock saves it; the others skip.
func (s *snapshot) save(vm *VM) error {
	f, err := os.OpenFile(filepath.Join(s.dir, "save.lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil || s.ready() {
		return nil
	}
	q, err := dialQMP(vm.qmpPath(), 10*time.Second)
	if err != nil {
		return err
	}
	defer q.Close()
	tmp := filepath.Join(s.dir, "state.tmp")
	if _, err := q.do("stop", nil); err != nil {
		return err
	}
	defer q.do("cont", nil)
	if _, err := q.do("migrate", map[string]any{"uri": "exec:cat > " + shellQuote(tmp)}); err != nil {
		return err
	}
	if err := q.waitMigration(2 * time.Minute); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "--sparse=always", vm.Overlay, filepath.Join(s.dir, "overlay.img")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the overlay: %w: %s", err, out)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "state")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.dir, "done"), nil, 0o644)
}

// restore boots vm from the snapshot: its overlay image copied in place
// of vm's, qemu started with -incoming and continued once loaded.
func (s *snapshot) restore(vm *VM) error {
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(s.dir, "overlay.img"), vm.Overlay).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the overlay: %w: %s", err, out)
	}
	return vm.startWith(func() error {
		q, err := dialQMP(vm.qmpPath(), 30*time.Second)
		if err != nil {
			return err
		}
		defer q.Close()
		if err := q.waitMigration(2 * time.Minute); err != nil {
			return err
		}
		_, err = q.do("cont", nil)
		return err
	}, "-incoming", "exec:cat "+shellQuote(filepath.Join(s.dir, "state")))
}

func (vm *VM) qmpPath() string { return filepath.Join(vm.Dir, "qmp.sock") }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// personalize applies what is this VM's own after a fresh boot (from a
// snapshot or not), over the control channel, as a person at the console
// would: the clock when restored, fresh entropy mixed into the kernel's
// pool, root's extra authorized keys, the passwords (hashed here, see
// [Options.Passwords]).
func (vm *VM) personalize(ctx context.Context, restored bool) error {
	var script []string
	if restored {
		script = append(script, fmt.Sprintf("date -s @%d >/dev/null", time.Now().Unix()))
	}
	script = append(script, "head -c 64 >/dev/urandom")
	if len(vm.opts.AuthorizedKeys) > 0 {
		script = append(script, "umask 077 && mkdir -p /root/.ssh && printf '%s\\n' "+quoteAll(vm.opts.AuthorizedKeys)+" >>/root/.ssh/authorized_keys")
	}
	for _, u := range slices.Sorted(maps.Keys(vm.opts.Passwords)) {
		hash, err := cryptPassword(vm.opts.Passwords[u])
		if err != nil {
			return err
		}
		script = append(script, "usermod -p "+shellQuote(hash)+" "+shellQuote(u))
	}
	seed := make([]byte, 64)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	cmd := vm.Command(ctx, "set -e; "+strings.Join(script, "; "))
	cmd.Stdin = strings.NewReader(string(seed))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("personalize the VM: %w: %s", err, out)
	}
	return nil
}

func quoteAll(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = shellQuote(s)
	}
	return strings.Join(q, " ")
}
