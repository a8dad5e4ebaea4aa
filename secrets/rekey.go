package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/hashicorp/go-multierror"
)

// RekeyOptions tune [Rekey].
type RekeyOptions struct {
	Files    []string // only these rules entries (relative to the rules file); all when empty
	All      bool     // re-encrypt even files already encrypted to the rule's recipients
	Parallel int      // files at once; 0 means GOMAXPROCS
	// Done is called after each file with what happened to it:
	// "rekeyed", "unchanged", "missing" or "failed".
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
// count, armor) are touched. A failure on one file does not stop the
// others: the returned error is a *multierror.Error with one error per
// failed file. It holds the directory's [Lock] throughout and first sweeps
// what a killed writer left behind.
//
// Files are re-encrypted in parallel, each rule's recipients parsed once,
// and made durable together: every new file is written to a temp file
// next to its destination, the filesystem is flushed once (syncfs on
// Linux; on macOS each temp file is pushed to the disk and the disk's
// cache flushed once), then each temp file is renamed over its
// destination and each directory synced. A crash at any moment leaves
// every file either old or new, and temp files the next writer sweeps.
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
	res := RekeyResult{Swept: swept}
	var errs *multierror.Error
	done := func(file, outcome string) {
		if o.Done != nil {
			o.Done(file, outcome)
		}
	}
	fail := func(file string, err error) {
		errs = multierror.Append(errs, fmt.Errorf("%s: %w", file, err))
		done(file, "failed")
	}
	entries := r.Entries
	if len(o.Files) > 0 {
		entries = nil
		for _, f := range o.Files {
			e, ok := r.Lookup(f)
			if !ok {
				fail(f, ErrNoRule)
				continue
			}
			entries = append(entries, e)
		}
	}

	// What each distinct recipient list means, worked out once.
	plans := map[string]*rekeyPlan{}
	for _, e := range entries {
		if k := planKey(e); plans[k] == nil {
			plans[k] = newRekeyPlan(e.PublicKeys)
		}
	}

	n := o.Parallel
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		pending []*tempFile
		next    = make(chan Rule)
	)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				outcome, tf, err := rekeyOne(ctx, r, ids, e, o.All, plans[planKey(e)])
				mu.Lock()
				switch {
				case err != nil:
					fail(e.File, err)
				case tf != nil:
					tf.entry = e.File
					pending = append(pending, tf)
				case outcome == "missing":
					res.Missing = append(res.Missing, e.File)
					done(e.File, outcome)
				default:
					res.Unchanged = append(res.Unchanged, e.File)
					done(e.File, outcome)
				}
				mu.Unlock()
			}
		}()
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			mu.Lock()
			fail(e.File, ctx.Err())
			mu.Unlock()
			continue
		}
		next <- e
	}
	close(next)
	wg.Wait()

	// What was re-encrypted is made durable and put in place, even when
	// interrupted: it is done, and this takes one flush.
	sort.Slice(pending, func(i, j int) bool { return pending[i].entry < pending[j].entry })
	committed, cerrs := commitTemps(pending)
	for _, tf := range committed {
		res.Rekeyed = append(res.Rekeyed, tf.entry)
		done(tf.entry, "rekeyed")
	}
	for _, ce := range cerrs {
		fail(ce.entry, ce.err)
	}
	sort.Strings(res.Unchanged)
	sort.Strings(res.Missing)
	return res, errs.ErrorOrNil()
}

// ErrNoRule is wrapped when a file has no entry in the rules file.
var ErrNoRule = errors.New("no rule for this file in the rules file")

// rekeyPlan is a recipient list parsed once for all the files it applies
// to: the age recipients to encrypt to and what their headers must say.
type rekeyPlan struct {
	recipients []age.Recipient
	want       Want
	err        error
}

func planKey(e Rule) string { return strings.Join(e.PublicKeys, "\n") }

func newRekeyPlan(keys []string) *rekeyPlan {
	p := &rekeyPlan{}
	if p.recipients, p.err = ParseRecipients(keys); p.err == nil && len(p.recipients) == 0 {
		p.err = errors.New("no recipients")
	}
	if p.err == nil {
		p.want, p.err = WantFor(keys)
	}
	return p
}

// rekeyOne re-encrypts one file into a temp file next to it, unless it is
// missing or (without all) already encrypted to the rule's recipients.
func rekeyOne(ctx context.Context, r *Rules, ids *Identities, e Rule, all bool, p *rekeyPlan) (string, *tempFile, error) {
	path, err := r.FilePath(e)
	if err != nil {
		return "", nil, err
	}
	ct, mode, err := readSecret(path)
	if errors.Is(err, os.ErrNotExist) {
		return "missing", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if p.err != nil {
		return "", nil, p.err
	}
	if !all {
		if h, err := ParseHeader(bytesReader(ct)); err == nil && p.want.Matches(h) && h.Armored == e.Armor {
			return "unchanged", nil, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	pt, err := Decrypt(ct, ids)
	if err != nil {
		return "", nil, err
	}
	defer clear(pt)
	out, err := encryptTo(pt, p.recipients, e.Armor)
	if err != nil {
		return "", nil, err
	}
	tf, err := writeTemp(path, out, mode)
	if err != nil {
		return "", nil, err
	}
	return "rekeyed", tf, nil
}

// readSecret reads the file at path and its permission bits, which the
// new file keeps.
func readSecret(path string) ([]byte, os.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, 0, err
	}
	return b, st.Mode().Perm(), nil
}
