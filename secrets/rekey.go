package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/hashicorp/go-multierror"
)

// RekeyOptions tune [Rekey].
type RekeyOptions struct {
	Files    []string // only these rules entries (relative to the rules file); all when empty
	All      bool     // re-encrypt even files already encrypted to the rule's recipients
	Parallel int      // files at once; 0 means GOMAXPROCS
	// Done is called (from worker goroutines) after each file with what
	// happened to it: "rekeyed", "unchanged", "missing" or "failed".
	Done func(file, outcome string)
}

// RekeyResult says what [Rekey] did.
type RekeyResult struct {
	Rekeyed, Unchanged, Missing []string
	// Swept are temp files an interrupted run left (see [SweepTemps]).
	Swept []string
}

// Rekey re-encrypts the rules' files to their recipients. By default only
// files whose header does not match the rule (ssh tags, other stanzas by
// count, armor) are touched. Files are handled in parallel; each is written
// atomically, so a crash leaves every file old or new. A failure on one file
// does not stop the others: the returned error is a *multierror.Error with
// one error per failed file. It holds the directory's [Lock] throughout
// and first sweeps what a killed writer left behind.
func Rekey(ctx context.Context, r *Rules, ids *Identities, o RekeyOptions) (RekeyResult, error) {
	unlock, err := Lock(r.Dir)
	if err != nil {
		return RekeyResult{}, err
	}
	defer unlock()
	swept, err := SweepTemps(r)
	if err != nil {
		return RekeyResult{Swept: swept}, fmt.Errorf("remove an interrupted run's temp files: %w", err)
	}
	entries := r.Entries
	var errs *multierror.Error
	if len(o.Files) > 0 {
		entries = nil
		for _, f := range o.Files {
			e, ok := r.Lookup(f)
			if !ok {
				errs = multierror.Append(errs, fmt.Errorf("%s: %w", f, ErrNoRule))
				continue
			}
			entries = append(entries, e)
		}
	}
	n := o.Parallel
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	var (
		mu  sync.Mutex
		res = RekeyResult{Swept: swept}
		wg  sync.WaitGroup
		sem = make(chan struct{}, n)
	)
	for _, e := range entries {
		if ctx.Err() != nil {
			mu.Lock()
			errs = multierror.Append(errs, fmt.Errorf("%s: %w", e.File, ctx.Err()))
			mu.Unlock()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(e Rule) {
			defer func() { <-sem; wg.Done() }()
			outcome, err := rekeyOne(ctx, r, ids, e, o.All)
			mu.Lock()
			switch {
			case err != nil:
				errs = multierror.Append(errs, fmt.Errorf("%s: %w", e.File, err))
				outcome = "failed"
			case outcome == "rekeyed":
				res.Rekeyed = append(res.Rekeyed, e.File)
			case outcome == "missing":
				res.Missing = append(res.Missing, e.File)
			default:
				res.Unchanged = append(res.Unchanged, e.File)
			}
			mu.Unlock()
			if o.Done != nil {
				o.Done(e.File, outcome)
			}
		}(e)
	}
	wg.Wait()
	return res, errs.ErrorOrNil()
}

// ErrNoRule is wrapped when a file has no entry in the rules.
var ErrNoRule = errors.New("no rule for this file in the rules file")

func rekeyOne(ctx context.Context, r *Rules, ids *Identities, e Rule, all bool) (string, error) {
	path, err := r.FilePath(e)
	if err != nil {
		return "", err
	}
	ct, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	if !all {
		h, herr := ParseHeader(bytesReader(ct))
		w, werr := WantFor(e.PublicKeys)
		if herr == nil && werr == nil && w.Matches(h) && h.Armored == e.Armor {
			return "unchanged", nil
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	pt, err := Decrypt(ct, ids)
	if err != nil {
		return "", err
	}
	defer clear(pt)
	out, err := Encrypt(pt, e.PublicKeys, e.Armor)
	if err != nil {
		return "", err
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := WriteFileAtomic(path, out, mode); err != nil {
		return "", err
	}
	return "rekeyed", nil
}
