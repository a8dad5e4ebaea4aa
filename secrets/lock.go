package secrets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// ErrLocked is wrapped when another process holds a secrets directory's
// lock: an edit (for as long as its editor is open) or a rekey.
var ErrLocked = errors.New("locked by another fleet process")

// Lock takes the write lock of the secrets directory dir (the rules
// file's): an exclusive flock on the directory itself, so no lock file
// shows up in the repo, released when the process dies however it dies.
// It does not wait: a second writer fails at once rather than after its
// editor session, with an error wrapping [ErrLocked].
//
// Writers hold it, so a temp file found while holding it is a dead
// writer's: [SweepTemps] removes them.
func Lock(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock secrets: %w", err)
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("secrets in %s are %w (an edit or a rekey); run this again when it is done", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock secrets in %s: %w", dir, err)
	}
	return func() { d.Close() }, nil // closing the last descriptor releases the lock
}

// SweepTemps removes the temp files [WriteFileAtomic] leaves when its
// process is killed before the rename (ciphertext only: fleet never writes
// plaintext there) from the directories of the rules' entries, and returns
// their paths relative to r.Dir. Call it holding [Lock].
func SweepTemps(r *Rules) ([]string, error) {
	dirs := map[string]bool{r.Dir: true}
	for _, e := range r.Entries {
		// Only directories inside r.Dir: one a symlink leads out of
		// (refused everywhere else) must not get another tree swept.
		d := filepath.Dir(filepath.FromSlash(e.File))
		if _, seen := dirs[filepath.Join(r.Dir, d)]; seen || d == "." {
			continue
		}
		if p, err := r.FilePath(Rule{File: filepath.ToSlash(d)}); err == nil {
			dirs[p] = true
		}
	}
	var swept []string
	for d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return swept, err
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), TempPrefix) || !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(d, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return swept, err
			}
			rel, _ := filepath.Rel(r.Dir, p)
			swept = append(swept, rel)
		}
	}
	sort.Strings(swept)
	return swept, nil
}
