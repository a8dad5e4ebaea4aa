package rig

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// newOverlay makes a fresh overlay image (the live system's writable
// layer) seeded with what this VM's live system has that the image has
// not: the control channel's authorized key and root's authorized_keys
// where the profile's root logs in with keys; with perVM, also root's
// extra AuthorizedKeys and the passwords set "at the console"
// (Options.Passwords), which a fresh boot applies over the control
// channel instead ([VM.personalize]), so that its overlay can serve as a
// snapshot's.
func (vm *VM) newOverlay(perVM bool) error {
	seed := filepath.Join(vm.Dir, "seed")
	defer os.RemoveAll(seed)
	up := filepath.Join(seed, "upper")
	// Each directory as the image has it: overlayfs shows the upper
	// directory's mode.
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"", 0o755}, {"etc", 0o755}, {"etc/rig", 0o700}} {
		if err := mkdirMode(filepath.Join(up, d.path), d.mode); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(up, "etc/rig/authorized_keys"), []byte(vm.OperatorKey+"\n"), 0o600); err != nil {
		return err
	}
	var keys []string
	if perVM {
		keys = vm.opts.AuthorizedKeys
	}
	if vm.Image.RootKeys {
		keys = append([]string{vm.OperatorKey}, keys...)
	}
	if len(keys) > 0 {
		for _, d := range []string{"root", "root/.ssh"} {
			if err := mkdirMode(filepath.Join(up, d), 0o700); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(up, "root/.ssh/authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	if perVM && len(vm.opts.Passwords) > 0 {
		shadow, err := vm.shadow()
		if err != nil {
			return err
		}
		p := filepath.Join(up, "etc/shadow")
		if err := os.WriteFile(p, shadow, 0o640); err != nil {
			return err
		}
		// Debian's shadow group is gid 42 (base-passwd).
		if err := os.Chown(p, 0, 42); err != nil {
			return err
		}
	}
	vm.Overlay = filepath.Join(vm.Dir, fmt.Sprintf("overlay-%d.img", len(vm.PastOverlays)))
	_ = os.Remove(vm.Overlay)
	if err := sparse(vm.Overlay, vm.opts.OverlaySize); err != nil {
		return err
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "fleet-overlay", "-d", seed, vm.Overlay).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 overlay: %w: %s", err, out)
	}
	return nil
}

func mkdirMode(p string, mode os.FileMode) error {
	if err := os.MkdirAll(p, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// shadow is the image's /etc/shadow with Options.Passwords set, each
// hashed here (SHA-512 crypt, openssl passwd -6, the password on stdin).
func (vm *VM) shadow() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(vm.Image.Dir, "shadow"))
	if err != nil {
		return nil, fmt.Errorf("passwords: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for _, u := range slices.Sorted(maps.Keys(vm.opts.Passwords)) {
		hash, err := cryptPassword(vm.opts.Passwords[u])
		if err != nil {
			return nil, err
		}
		found := false
		for i, l := range lines {
			f := strings.Split(l, ":")
			if len(f) > 2 && f[0] == u {
				f[1] = hash
				lines[i] = strings.Join(f, ":")
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("passwords: the %s image has no user %q", vm.Image.Profile, u)
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// cryptPassword hashes a password as passwd does (SHA-512 crypt, with
// openssl passwd -6; the password goes on stdin).
func cryptPassword(password string) (string, error) {
	if strings.ContainsAny(password, "\n\r") {
		return "", fmt.Errorf("passwords: a password cannot hold a line break")
	}
	cmd := exec.Command("openssl", "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	hash, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("passwords: openssl passwd: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(hash)), nil
}
