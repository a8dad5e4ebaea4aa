package rig

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Finding is private key material found in a scanned image.
type Finding struct {
	Path string // path inside the image (e.g. "upper/root/.ssh/id_ed25519")
	What string // which pattern matched
}

func (f Finding) String() string { return f.Path + ": " + f.What }

// Patterns found by every scan, besides the exact key bytes a caller
// passes.
var Patterns = []string{"PRIVATE KEY", "AGE-SECRET-KEY-1"}

// ScanImage mounts an ext4 image read-only on a loop device and reports
// every file holding a [Patterns] string or one of secrets (exact bytes,
// e.g. a private key file's content). Nothing it finds is printed: a
// finding names the file and the pattern only.
func ScanImage(ctx context.Context, image string, secrets ...[]byte) ([]Finding, error) {
	var found []Finding
	err := withImage(ctx, image, func(dir string) error {
		var err error
		found, err = ScanDir(dir, secrets...)
		return err
	})
	return found, err
}

// WalkImage mounts an ext4 image read-only (see [ScanImage]) and walks
// it with fn, paths relative to the image's root ("upper/root/.ssh"),
// symlinks not followed; fn may read the files while it runs.
func WalkImage(ctx context.Context, image string, fn func(rel, full string, d fs.DirEntry) error) error {
	return withImage(ctx, image, func(dir string) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			return fn(rel, p, d)
		})
	})
}

// withImage mounts an ext4 image read-only for fn.
func withImage(ctx context.Context, image string, fn func(dir string) error) error {
	dir, err := os.MkdirTemp("", "rig-scan")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	// A writable loop device under a read-only mount: ext4 replays its
	// journal (the VM may have been killed), and nothing else is written.
	out, err := exec.CommandContext(ctx, "losetup", "-f", "--show", image).CombinedOutput()
	if err != nil {
		return fmt.Errorf("scan %s: losetup: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	if out, err := exec.CommandContext(ctx, "mount", "-t", "ext4", "-o", "ro", loop, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("scan %s: mount: %w: %s", image, err, strings.TrimSpace(string(out)))
	}
	defer func() {
		if exec.Command("umount", dir).Run() != nil {
			_ = exec.Command("umount", "-l", dir).Run()
		}
	}()
	return fn(dir)
}

// ScanDir is [ScanImage] on a directory tree (symlinks not followed).
func ScanDir(dir string, secrets ...[]byte) ([]Finding, error) {
	type needle struct {
		b    []byte
		name string
	}
	var needles []needle
	for _, p := range Patterns {
		needles = append(needles, needle{[]byte(p), fmt.Sprintf("%q", p)})
	}
	for i, s := range secrets {
		if s = bytes.TrimSpace(s); len(s) > 0 {
			needles = append(needles, needle{s, fmt.Sprintf("secret #%d (exact bytes)", i+1)})
		}
	}
	var found []Finding
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, n := range needles {
			if bytes.Contains(data, n.b) {
				found = append(found, Finding{Path: rel, What: n.name})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	return found, nil
}

// Scan powers off the live installer (if it still runs from its overlay) and
// scans its writable overlay images, those of live boots before a
// HardReset or BootInstaller too; see [ScanImage].
func (vm *VM) Scan(ctx context.Context, secrets ...[]byte) ([]Finding, error) {
	if !vm.installed {
		vm.Shutdown(ctx)
	}
	var all []Finding
	for _, img := range append(append([]string{}, vm.PastOverlays...), vm.Overlay) {
		f, err := ScanImage(ctx, img, secrets...)
		if err != nil {
			return nil, err
		}
		all = append(all, f...)
	}
	return all, nil
}
