package secrets

import (
	"os"
	"syscall"
)

// pushFile hands the file's data to the disk: macOS's fsync(2) does that
// and no more (it does not flush the disk's cache), so it is cheap.
func pushFile(f *os.File) error { return syscall.Fsync(int(f.Fd())) }

// flushFS flushes the disk's cache once per filesystem of dirs:
// F_FULLFSYNC, which Go's File.Sync issues on macOS, makes everything
// pushed so far durable. macOS has no syncfs; this is its one flush.
func flushFS(dirs []string) error {
	fss, err := byDevice(dirs)
	if err != nil {
		return err
	}
	for _, d := range fss {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
