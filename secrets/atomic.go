package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// TempPrefix starts the names of the temporary files fleet writes next to
// a secret before renaming them over it ([WriteFileAtomic], [Rekey]).
const TempPrefix = ".fleet-tmp-"

// WriteFileAtomic writes data to path so that path holds either its old or
// its new content at any moment: a temp file in the same directory, chmod
// perm, fsync, rename, fsync of the directory. The temp file is removed on
// error.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := createTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// createTemp writes data with mode perm to a new temp file next to path
// and returns it, still open. It removes the file on error.
func createTemp(path string, data []byte, perm os.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-*")
	if err != nil {
		return nil, err
	}
	if err = f.Chmod(perm); err == nil {
		_, err = f.Write(data)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// tempFile is a file's new content written next to it: not yet durable,
// not yet in place (see commitTemps).
type tempFile struct {
	entry     string // the rules entry, for results
	path, tmp string
}

// writeTemp writes data to a temp file next to path, to be committed with
// others by commitTemps.
func writeTemp(path string, data []byte, perm os.FileMode) (*tempFile, error) {
	f, err := createTemp(path, data, perm)
	if err != nil {
		return nil, err
	}
	if err = pushFile(f); err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &tempFile{path: path, tmp: f.Name()}, nil
}

type commitError struct {
	entry string
	err   error
}

// commitTemps makes the temp files durable with one flush of each
// filesystem they are on (flushFS), renames each over its destination,
// then syncs each directory once. Until a file's rename its destination
// is untouched; a file renamed is its new content, durably. It returns the
// files committed and an error for each that was not (its temp file
// removed).
func commitTemps(tfs []*tempFile) ([]*tempFile, []commitError) {
	if len(tfs) == 0 {
		return nil, nil
	}
	var dirs []string
	seen := map[string]bool{}
	for _, tf := range tfs {
		if d := filepath.Dir(tf.path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	var errs []commitError
	if err := flushFS(dirs); err != nil {
		for _, tf := range tfs {
			os.Remove(tf.tmp)
			errs = append(errs, commitError{tf.entry, fmt.Errorf("flush the new files to disk: %w; the old file is untouched", err)})
		}
		return nil, errs
	}
	var done []*tempFile
	for _, tf := range tfs {
		if err := os.Rename(tf.tmp, tf.path); err != nil {
			os.Remove(tf.tmp)
			errs = append(errs, commitError{tf.entry, err})
			continue
		}
		done = append(done, tf)
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			for _, tf := range done {
				if filepath.Dir(tf.path) == d {
					errs = append(errs, commitError{tf.entry, fmt.Errorf("written, but syncing its directory failed: %w", err)})
				}
			}
		}
	}
	return done, errs
}

// syncDir makes the entries of dir (a rename) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// byDevice keeps one directory per filesystem of dirs.
func byDevice(dirs []string) ([]string, error) {
	var out []string
	seen := map[uint64]bool{}
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			return nil, err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return nil, errors.New("no device number for " + d)
		}
		if dev := uint64(sys.Dev); !seen[dev] {
			seen[dev] = true
			out = append(out, d)
		}
	}
	return out, nil
}
