package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// TempPlainPrefix starts the names of the directories [PrivateTempDir]
// makes for plaintext.
const TempPlainPrefix = "fleet-secret-"

// ErrNotInMemory is wrapped when the directory plaintext would go to is on
// a disk: Linux needs a tmpfs or ramfs.
var ErrNotInMemory = errors.New("not in memory")

// TempDir is a private (0700) directory for plaintext. On Linux it is on
// tmpfs or ramfs, never on a disk; macOS has neither, and there it is the
// per-user $TMPDIR, with a Warning saying so. It is locked (a flock on the
// directory) for as long as it is open, so that a later fleet can tell a
// directory whose process died, whatever killed it, from a live one.
type TempDir struct {
	Path    string
	Warning string   // why the plaintext is less private than on tmpfs, or ""
	Swept   []string // stale plaintext directories of dead fleet processes, removed
	lock    *os.File
}

// PrivateTempDir creates a [TempDir] and first removes the plaintext
// directories that killed fleet processes left in the same place (those no
// process holds locked; see [TempDir.Swept]). On Linux that place is
// $XDG_RUNTIME_DIR if set, else /dev/shm; a directory that is not tmpfs or
// ramfs is refused with an error wrapping [ErrNotInMemory], and a hint
// naming one that is. On macOS it is $TMPDIR. The caller calls Remove on
// every path out, signals included.
func PrivateTempDir() (*TempDir, error) { return privateTempDir(hostTempEnv()) }

// tempEnv is what choosing the directory depends on, so that the choice on
// each system can be tested on any.
type tempEnv struct {
	goos    string
	getenv  func(string) string
	shm     string                                    // /dev/shm
	runUser string                                    // /run/user/UID
	fsType  func(path string) (name string, ram bool) // the filesystem of path
}

func hostTempEnv() tempEnv {
	return tempEnv{
		goos: runtime.GOOS, getenv: os.Getenv, shm: "/dev/shm",
		runUser: "/run/user/" + strconv.Itoa(os.Getuid()), fsType: fsType,
	}
}

func privateTempDir(env tempEnv) (*TempDir, error) {
	base, warning, err := tempBase(env)
	if err != nil {
		return nil, err
	}
	d := &TempDir{Warning: warning}
	if d.Swept, err = sweepPlainDirs(base); err != nil {
		return nil, fmt.Errorf("remove stale plaintext directories in %s: %w", base, err)
	}
	for tries := 0; ; tries++ {
		p, err := os.MkdirTemp(base, TempPlainPrefix)
		if err != nil {
			return nil, fmt.Errorf("make a directory for the plaintext: %w", err)
		}
		lock, err := lockPlainDir(p)
		if err == nil {
			if err = os.Chmod(p, 0o700); err == nil {
				d.Path, d.lock = p, lock
				return d, nil
			}
			lock.Close()
			os.RemoveAll(p)
			return nil, err
		}
		// Another fleet's sweep took it between mkdir and the lock (it
		// was empty): make another.
		os.Remove(p)
		if tries == 3 {
			return nil, fmt.Errorf("lock the plaintext directory %s: %w", p, err)
		}
	}
}

// tempBase chooses where plaintext goes: see PrivateTempDir.
func tempBase(env tempEnv) (base, warning string, err error) {
	if env.goos == "darwin" {
		// No tmpfs on macOS: the per-user temporary directory, 0700 under
		// /var/folders, is the most private place on a disk.
		t := env.getenv("TMPDIR")
		if t == "" {
			return "", "", errors.New("no place for the plaintext: TMPDIR is not set\nhint: run from a normal macOS session, where TMPDIR is the per-user temporary directory")
		}
		name, _ := env.fsType(t)
		return filepath.Clean(t), fmt.Sprintf("macOS has no tmpfs: the plaintext goes to $TMPDIR (%s, on %s), a per-user directory on disk, and is removed when the edit ends", filepath.Clean(t), name), nil
	}
	what, base := "/dev/shm", env.shm
	if x := env.getenv("XDG_RUNTIME_DIR"); x != "" {
		what, base = "$XDG_RUNTIME_DIR ("+x+")", x
	}
	name, ram := env.fsType(base)
	if ram {
		return base, "", nil
	}
	hint := "mount a tmpfs and point XDG_RUNTIME_DIR at it (mount -t tmpfs -o mode=0700 tmpfs DIR)"
	for _, c := range []string{env.shm, env.runUser} {
		if _, ok := env.fsType(c); ok && c != base {
			hint = "set XDG_RUNTIME_DIR to a tmpfs directory, such as " + c + ", which is one"
			break
		}
	}
	return "", "", fmt.Errorf("%s is on %s, %w: the plaintext would reach a disk\nhint: %s", what, name, ErrNotInMemory, hint)
}

// Remove removes the directory and what it holds, then releases its lock.
func (d *TempDir) Remove() error {
	err := os.RemoveAll(d.Path)
	d.lock.Close()
	return err
}

// lockPlainDir opens the directory at p and takes its flock. It fails if
// p is no longer the directory it opened (a sweep removed it meanwhile).
func lockPlainDir(p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	fst, ferr := f.Stat()
	pst, perr := os.Lstat(p)
	if ferr != nil || perr != nil || !os.SameFile(fst, pst) {
		f.Close()
		return nil, errors.New("removed while it was being locked")
	}
	return f, nil
}

// sweepPlainDirs removes the plaintext directories in base that belong to
// this user and that no process holds locked: their fleet died (a
// SIGKILL, a crash, a power cut) before it could remove them. A directory
// whose lock is held belongs to a live edit and stays.
func sweepPlainDirs(base string) ([]string, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var swept []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), TempPlainPrefix) || !e.IsDir() {
			continue
		}
		p := filepath.Join(base, e.Name())
		if !ownedByMe(p) {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // a live edit's
			continue
		}
		err = os.RemoveAll(p)
		f.Close()
		if err != nil {
			return swept, err
		}
		swept = append(swept, p)
	}
	return swept, nil
}

// ownedByMe reports whether p (not followed) is a directory of this user.
func ownedByMe(p string) bool {
	st, err := os.Lstat(p)
	if err != nil || !st.IsDir() {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Getuid()
}
