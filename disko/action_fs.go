package disko

import (
	"context"
	"fmt"
	"strings"
)

// formatter is the check, act and verify of every step that puts a
// signature on a device (mkfs, mkswap, pvcreate, luksFormat): done when
// blkid finds the step's type there; a different type is a mismatch
// unless wiping; verify asks blkid again.
type formatter struct{}

func (formatter) check(ctx context.Context, a *applier, st *Step) (bool, error) {
	dev := a.resolve(ctx, st.Device)
	if !a.exists(ctx, dev) {
		return false, nil // made by an earlier step (a partition, an open luks)
	}
	t, err := a.blkType(ctx, dev, false)
	if err != nil {
		return false, err
	}
	if t == st.FSType {
		return true, nil
	}
	if t != "" && !a.wipe(st) {
		return false, mismatch(st.Node, fmt.Sprintf("%s holds %s, the layout wants %s", dev, t, st.FSType))
	}
	return false, nil
}

func (formatter) act(ctx context.Context, a *applier, st *Step) error {
	if a.wipe(st) {
		if err := a.run(ctx, st, []string{"wipefs", "--all", "-f", a.resolve(ctx, st.Device)}); err != nil {
			return err
		}
	}
	return a.runCmds(ctx, st)
}

func (formatter) verify(ctx context.Context, a *applier, st *Step) error {
	return a.blkidIs(ctx, st, st.FSType)
}

// Mkfs makes a filesystem (mkfs.FORMAT).
type Mkfs struct{ formatter }

func (*Mkfs) Kind() string { return "mkfs" }

// Mkswap makes a swap signature. A randomEncryption swap has no step:
// disko leaves it raw.
type Mkswap struct{ formatter }

func (*Mkswap) Kind() string { return "mkswap" }

// BtrfsTree makes a btrfs filesystem's subvolumes and swapfiles, as disko
// does: the filesystem's top mounted on a temporary directory, its own
// swapfiles first, then each subvolume (its parent directory made first)
// and that subvolume's swapfiles. What exists is kept; a swapfile of
// another size or mode is a mismatch unless wiping. check and verify
// look the same way (btrfs mounts a filesystem's top beside its other
// mounts, so this works while the layout is mounted): every subvolume
// there, every swapfile of its size with mode 0600.
type BtrfsTree struct {
	Top     []*Swapfile
	Subvols []*Subvolume
}

func (*BtrfsTree) Kind() string { return "subvolumes" }

// onTop runs fn with the filesystem's top mounted on a temporary directory.
func (b *BtrfsTree) onTop(ctx context.Context, a *applier, st *Step, fn func(mnt string) error) error {
	out, err := a.out(ctx, "mktemp", "-d", "/tmp/fleet-disko.XXXXXX")
	if err != nil {
		return err
	}
	mnt := strings.TrimSpace(string(out))
	defer a.out(context.WithoutCancel(ctx), "rmdir", mnt)
	opts := "subvol=/"
	if st.Kept {
		opts = "ro," + opts // a kept filesystem is only looked at
	}
	if _, err := a.out(ctx, "mount", "-t", "btrfs", "-o", opts, a.resolve(ctx, st.Device), mnt); err != nil {
		return err
	}
	defer a.out(context.WithoutCancel(ctx), "umount", mnt)
	return fn(mnt)
}

// missing lists what is not there yet under mnt; an error for a swapfile
// that is there but wrong (unless wiping).
func (b *BtrfsTree) missing(ctx context.Context, a *applier, st *Step, mnt string) ([]string, error) {
	var out []string
	files := func(dir string, fs []*Swapfile) error {
		for _, f := range fs {
			got, want, err := swapfileStat(ctx, a, dir+"/"+f.Path, f)
			if err != nil {
				return err
			}
			if got != want {
				if got != "" && !a.wipe(st) {
					return mismatch(st.Node, fmt.Sprintf("swapfile %s is %q (size, mode, type), the layout wants %q", f.Path, got, want))
				}
				out = append(out, "swapfile "+f.Path)
			}
		}
		return nil
	}
	if err := files(mnt, b.Top); err != nil {
		return nil, err
	}
	for _, sv := range b.Subvols {
		p := mnt + "/" + strings.TrimPrefix(sv.Name, "/")
		if _, err := a.out(ctx, "btrfs", "subvolume", "show", p); err != nil {
			out = append(out, "subvolume "+sv.Name)
			for _, f := range sv.Swapfiles {
				out = append(out, "swapfile "+sv.Name+"/"+f.Path)
			}
			continue
		}
		if err := files(p, sv.Swapfiles); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (b *BtrfsTree) check(ctx context.Context, a *applier, st *Step) (done bool, err error) {
	dev := a.resolve(ctx, st.Device)
	if !a.exists(ctx, dev) {
		return false, nil
	}
	if t, err := a.blkType(ctx, dev, false); err != nil || t != "btrfs" {
		return false, err // the mkfs step before makes it
	}
	err = b.onTop(ctx, a, st, func(mnt string) error {
		m, err := b.missing(ctx, a, st, mnt)
		done = len(m) == 0
		return err
	})
	return done, err
}

func (b *BtrfsTree) act(ctx context.Context, a *applier, st *Step) error {
	return b.onTop(ctx, a, st, func(mnt string) error {
		if err := b.swapfiles(ctx, a, st, mnt, b.Top); err != nil {
			return err
		}
		for _, sv := range b.Subvols {
			p := mnt + "/" + strings.TrimPrefix(sv.Name, "/")
			if _, err := a.out(ctx, "btrfs", "subvolume", "show", p); err != nil {
				if _, err := a.out(ctx, "mkdir", "-p", parentDir(p)); err != nil {
					return err
				}
				if _, err := a.out(ctx, append([]string{"btrfs", "subvolume", "create", p}, sv.ExtraArgs...)...); err != nil {
					return err
				}
			}
			if err := b.swapfiles(ctx, a, st, p, sv.Swapfiles); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *BtrfsTree) verify(ctx context.Context, a *applier, st *Step) error {
	return b.onTop(ctx, a, st, func(mnt string) error {
		m, err := b.missing(ctx, a, st, mnt)
		if err == nil && len(m) > 0 {
			err = fmt.Errorf("%s missing after creating them: %w", strings.Join(m, ", "), ErrVerify)
		}
		return err
	})
}

// swapfileStat is a swapfile's size, mode and type as stat says them, ""
// when absent, and what the layout wants.
func swapfileStat(ctx context.Context, a *applier, p string, f *Swapfile) (got, want string, err error) {
	out, err := a.out(ctx, "sh", "-c", `if [ -e "$1" ]; then stat -c '%s %a %F' "$1"; fi`, "fleet-stat", p)
	size, _ := parseSize(f.Size)
	return strings.TrimSpace(string(out)), fmt.Sprintf("%d 600 regular file", size), err
}

func (b *BtrfsTree) swapfiles(ctx context.Context, a *applier, st *Step, dir string, files []*Swapfile) error {
	for _, f := range files {
		p := dir + "/" + f.Path
		got, want, err := swapfileStat(ctx, a, p, f)
		if err != nil {
			return err
		}
		if got == want {
			continue
		}
		if got != "" {
			if !a.wipe(st) {
				return mismatch(st.Node, fmt.Sprintf("swapfile %s is %q (size, mode, type), the layout wants %q", f.Path, got, want))
			}
			if _, err := a.out(ctx, "rm", "-f", "--", p); err != nil {
				return err
			}
		}
		if _, err := a.out(ctx, "btrfs", "filesystem", "mkswapfile", "--size", f.Size, p); err != nil {
			return err
		}
	}
	return nil
}

func parentDir(p string) string {
	if i := strings.LastIndex(p, "/"); i > 0 {
		return p[:i]
	}
	return "/"
}
