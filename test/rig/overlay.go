package rig

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// newOverlay makes a fresh overlay image (the live system's writable
// layer) seeded with what this VM's live system has that the image has
// not: the control channel's authorized key, root's authorized_keys where
// the profile's root logs in with keys (or AuthorizedKeys asks), and the
// passwords set "at the console" (Options.Passwords).
func (vm *VM) newOverlay() error {
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
	keys := vm.opts.AuthorizedKeys
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
	if len(vm.opts.Passwords) > 0 {
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
	var users []string
	for u := range vm.opts.Passwords {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		cmd := exec.Command("openssl", "passwd", "-6", "-stdin")
		cmd.Stdin = strings.NewReader(vm.opts.Passwords[u] + "\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		hash, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("passwords: openssl passwd: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		found := false
		for i, l := range lines {
			f := strings.Split(l, ":")
			if len(f) > 2 && f[0] == u {
				f[1] = strings.TrimSpace(string(hash))
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
